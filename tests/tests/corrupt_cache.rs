//! Cache entries are data: a truncated, hand-edited or crafted entry fails the build with an error that
//! names the file, and never becomes code.

use crate::util::{both, Fixture};

#[test]
fn damaged_and_crafted_entries_fail_naming_the_file() {
    let f = Fixture::copy("offline", "damaged_and_crafted_entries_fail_naming_the_file");
    let path = f.entry();
    let good = std::fs::read_to_string(&path).expect("read the entry");
    let cases = [
        ("truncated", good[..good.len() / 2].to_owned(), "not a cache entry"),
        ("out of space", good.replacen("\"block\": 128", "\"block\": 100", 1), "does not allow 100"),
        (
            "crafted to smuggle code",
            good.replacen("\"block\": 128", "\"block\": \"128 }; compile_error!(\\\"pwned\\\"); {\"", 1),
            "does not allow",
        ),
    ];
    for (what, text, reason) in cases {
        std::fs::write(&path, &text).expect("write the damaged entry");
        let out = f.offline("build");
        assert!(!out.status.success(), "a {what} entry must fail the build:\n{}", both(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&path.display().to_string()), "the {what} error names the file:\n{stderr}");
        assert!(stderr.contains(reason), "the {what} error says why (`{reason}`):\n{stderr}");
        // The payload may be quoted in the message as data, but never compiled.
        assert!(!stderr.contains("error: pwned"), "crafted tokens reached the compiler:\n{stderr}");
    }
}
