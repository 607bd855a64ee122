import json, glob, sys
for f in sorted(glob.glob(sys.argv[1] + '/rec_*.json')):
    if f.endswith('.meta.json'): continue
    d = json.load(open(f)); rows = []
    for k, v in d['cache'].items():
        t = v.get('time')
        rows.append((t if isinstance(t, (int, float)) else 1e9, k, v.get('TFLOP/s'), v.get('registers'), v.get('local_bytes'), v.get('failure')))
    rows.sort()
    print(f.split('/')[-1], len(rows), 'failed', sum(r[0] >= 1e9 for r in rows))
    for r in rows[:10]: print('  ', r)
    for r in [r for r in rows if r[0] >= 1e9][:3]: print('  FAIL', r, str(d['cache'][r[1]].get('message', ''))[:200])
