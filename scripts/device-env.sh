# Sourced by the scripts that run on the device machine (scripts/device-*.sh): the CUDA libraries on the
# library path, and `t CMD…`, which runs a command and prints its exit status and wall time. The device
# machine has no `bc`, so the arithmetic is awk's.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
t() { local s e; s=$(date +%s.%N); "$@"; local rc=$?; e=$(date +%s.%N); echo "(exit $rc, $(awk "BEGIN {print $e - $s}") s)"; }
