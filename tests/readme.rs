//! The README's quickstart, run as written: node A's and node B's commands
//! and the third terminal's block, in a private mount namespace where the
//! README's fixed /tmp/a and /tmp/b are empty, with
//! `./target/release/peerd` being the binary under test. Every output line
//! the README shows is checked; ids, figures and ports may differ.

mod support;

use std::process::Command;

const PEERD: &str = env!("CARGO_BIN_EXE_peerd");

/// The quickstart's code blocks, in order.
fn quickstart_blocks() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("## Quickstart")
        .nth(1)
        .expect("a Quickstart section")
        .split("\n## ")
        .next()
        .unwrap();
    section
        .split("```sh\n")
        .skip(1)
        .map(|block| {
            let code = block.split("```").next().unwrap();
            code.lines().map(str::to_owned).collect()
        })
        .collect()
}

/// A block's commands, and the output lines shown after them as comments.
fn commands_and_output(block: &[String]) -> (Vec<String>, Vec<String>) {
    let (shown, commands): (Vec<&String>, Vec<&String>) =
        block.iter().partition(|line| line.starts_with("# "));
    (
        commands.into_iter().cloned().collect(),
        shown.into_iter().map(|l| l[2..].to_owned()).collect(),
    )
}

/// One piece of a line as the README shows it.
#[derive(Debug, PartialEq)]
enum Shown {
    /// A node id shortened with `…`: any base32 run.
    Id,
    /// Digits: any digits.
    Number,
    /// Spaces: any run of spaces (table columns vary in width).
    Space,
    Char(char),
}

fn pieces(shown: &str) -> Vec<Shown> {
    let mut pieces: Vec<Shown> = Vec::new();
    let chars: Vec<char> = shown.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let word = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '…')
            .count();
        let piece = if chars[i..i + word].contains(&'…') {
            i += word;
            Shown::Id
        } else if chars[i].is_ascii_digit() {
            i += chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            Shown::Number
        } else if chars[i] == ' ' {
            i += chars[i..].iter().take_while(|c| **c == ' ').count();
            Shown::Space
        } else {
            i += 1;
            Shown::Char(chars[i - 1])
        };
        pieces.push(piece);
    }
    pieces
}

/// Whether `actual` is a line like `shown`.
fn matches(shown: &str, actual: &str) -> bool {
    let actual: Vec<char> = actual.chars().collect();
    let mut at = 0;
    for piece in pieces(shown) {
        let run = |pred: fn(&char) -> bool| actual[at..].iter().take_while(|c| pred(c)).count();
        let taken = match piece {
            Shown::Id => run(|c| c.is_ascii_lowercase() || ('2'..='7').contains(c)),
            Shown::Number => run(char::is_ascii_digit),
            Shown::Space => run(|c| *c == ' '),
            Shown::Char(c) => usize::from(actual.get(at) == Some(&c)),
        };
        if taken == 0 {
            return false;
        }
        at += taken;
    }
    at == actual.len()
}

#[test]
fn shown_lines_match_what_varies_and_nothing_else() {
    let shown = "pong from 5gq2…x7 in 0.412 ms";
    assert!(matches(shown, "pong from drthkjbfxm in 12.030 ms"));
    assert!(!matches(shown, "pong from drthkjbfxm in 12.030 s"));
    assert!(!matches(shown, "no pong from drthkjbfxm in 12.030 ms"));
    let row = "3ndk…q4      connected   inbound";
    assert!(matches(row, "abcdefgh23 connected inbound"));
    assert!(!matches(row, "abcdefgh23 offline inbound"));
}

/// Runs A and B in the background, waits for their admin sockets, runs the
/// third block, stops the daemons; prints each part's stdout after a marker.
fn script(a: &[String], b: &[String], third: &[String]) -> String {
    format!(
        r#"set -e
for dir in /tmp/a /tmp/b; do
  mkdir -p $dir
  mount -t tmpfs -o mode=0700 tmpfs $dir
done
( {a} ) > a.out 2> a.err &
A_PID=$!
( {b} ) > b.out 2> b.err &
B_PID=$!
for _ in $(seq 100); do
  [ -S /tmp/a/admin.sock ] && [ -S /tmp/b/admin.sock ] && break
  sleep 0.2
done
set +e
bash -e -c '{third}' > third.out 2> third.err
THIRD=$?
kill -TERM $A_PID $B_PID
wait
for part in a third; do echo "=== $part"; cat $part.out; done
echo "=== stderr"; cat a.err b.err third.err
exit $THIRD
"#,
        a = a.join("; "),
        b = b.join("; "),
        third = third.join("\n").replace('\'', r#"'\''"#),
    )
}

#[test]
fn the_quickstart_runs_as_written() {
    if !support::runs_as_root("a private /tmp (a mount namespace)") {
        return;
    }
    let blocks = quickstart_blocks();
    assert_eq!(blocks.len(), 3, "A, B and the third terminal");
    let (mut a, a_shown) = commands_and_output(&blocks[0]);
    // Building is what `cargo test` did; the binary under test stands in.
    assert_eq!(a.remove(0), "cargo build --release");
    let (b, _) = commands_and_output(&blocks[1]);
    let (third, third_shown) = commands_and_output(&blocks[2]);

    let work = tempfile::tempdir().unwrap();
    let release = work.path().join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::os::unix::fs::symlink(PEERD, release.join("peerd")).unwrap();
    let output = Command::new("unshare")
        .args(["--mount", "--fork", "sh", "-c"])
        .arg(script(&a, &b, &third))
        .current_dir(work.path())
        .output()
        .expect("unshare");
    // The mount points stay behind, empty, when the namespace ends.
    let _ = std::fs::remove_dir("/tmp/a");
    let _ = std::fs::remove_dir("/tmp/b");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "the third block failed:\n{stdout}");
    let part = |name: &str| -> Vec<String> {
        let after = stdout.split(&format!("=== {name}\n")).nth(1).unwrap_or("");
        let part = after.split("\n=== ").next().unwrap();
        part.lines().map(str::to_owned).collect()
    };
    // A prints what the README shows, in that order (a log line may come between).
    let mut a_out = part("a").into_iter();
    for shown in &a_shown {
        assert!(
            a_out.any(|line| matches(shown, &line)),
            "node A printed no line like {shown:?}:\n{stdout}"
        );
    }
    let third_out = part("third");
    assert_eq!(third_out.len(), third_shown.len(), "{stdout}");
    for (shown, line) in third_shown.iter().zip(&third_out) {
        assert!(matches(shown, line), "{line:?} is not like {shown:?}");
    }
}
