//! `bench-table [RESULTS]`: writes the one table of benchmark figures (`results.md` beside
//! the results file, default `target/bench/results.json`) and prints it.

use std::path::PathBuf;

use parallax_testkit::results;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .map_or_else(|| PathBuf::from(results::DEFAULT_PATH), PathBuf::from);
    let all = results::read(&path);
    anyhow::ensure!(
        !all.is_empty(),
        "no figures in {}: run `make bench` (or one of its bench-* targets) first",
        path.display()
    );
    let table = results::table(&all);
    let out = results::table_path(&path);
    std::fs::write(&out, &table)?;
    print!("{table}");
    println!("(written to {})", out.display());
    Ok(())
}
