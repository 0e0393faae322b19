//! The Layout that README.md and each crate's documentation give is the
//! tree: every module of both crates is listed, in both places, and
//! nothing listed is missing from the tree.

use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The modules a crate root declares (`mod x;` or `pub mod x;`).
fn modules(lib: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(lib)).unwrap();
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start_matches("pub ").trim();
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.to_owned())
        })
        .collect()
}

/// The README's Layout block.
fn readme_layout() -> String {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let start = readme
        .find("## Layout")
        .expect("README.md has a Layout section");
    let block = &readme[start..];
    let open = block.find("```\n").expect("a code block") + 4;
    let close = block[open..].find("```").expect("the block ends") + open;
    block[open..close].to_owned()
}

#[test]
fn the_readme_layout_lists_every_module_of_both_crates() {
    let layout = readme_layout();
    let (library, daemon) = layout
        .split_once("\nsrc/")
        .expect("the daemon crate's src/ after the library's");
    for module in modules("crates/peerd/src/lib.rs") {
        let listed = format!("  src/{module} ");
        assert!(
            library.contains(&listed),
            "README's Layout lacks the library's {module}"
        );
    }
    for module in modules("src/lib.rs") {
        let listed = format!("\n  {module} ");
        assert!(
            daemon.contains(&listed),
            "README's Layout lacks the daemon's {module}"
        );
    }
    for line in library
        .lines()
        .filter_map(|l| l.trim().strip_prefix("src/"))
    {
        let name = line.split_whitespace().next().unwrap();
        let path = Path::new(ROOT).join("crates/peerd/src").join(name);
        assert!(
            path.exists() || path.with_extension("rs").exists(),
            "README's Layout lists crates/peerd/src/{name}, which does not exist"
        );
    }
}

#[test]
fn each_crates_documentation_lists_its_modules_in_its_layout_section() {
    for lib in ["crates/peerd/src/lib.rs", "src/lib.rs"] {
        let text = std::fs::read_to_string(Path::new(ROOT).join(lib)).unwrap();
        let docs: String = text
            .lines()
            .filter_map(|l| l.strip_prefix("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        let layout = docs.split("# Layout").nth(1).expect("a Layout section");
        for module in modules(lib) {
            assert!(
                layout.contains(&format!("`{module}`")),
                "{lib}'s Layout section lacks {module}"
            );
        }
    }
}
