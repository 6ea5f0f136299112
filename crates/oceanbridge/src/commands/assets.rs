//! `oceanbridge generate-assets --out-dir DIR` (hidden): the man pages (clap_mangen) and
//! shell completions (clap_complete) made from this binary's own clap definition, so
//! they can never disagree with the flags it accepts. The Debian package build runs it
//! (packaging/deb/build.sh); a `cargo install` user can run it too.
//!
//! Layout written: `DIR/man/oceanbridge.1.gz` and one `oceanbridge-<cmd>.1.gz` per
//! subcommand, `DIR/completions/{oceanbridge.bash,_oceanbridge,oceanbridge.fish}`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap_complete::Shell;

/// Arguments of `oceanbridge generate-assets`.
#[derive(Debug, clap::Args)]
pub struct AssetsArgs {
    /// Where to write `man/` and `completions/` (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
}

pub fn run(args: AssetsArgs, mut cli: clap::Command) -> anyhow::Result<ExitCode> {
    let man = args.out_dir.join("man");
    let completions = args.out_dir.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_man_pages(cli.clone(), &man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut cli, "oceanbridge", &completions)
            .with_context(|| format!("cannot write the {shell} completion"))?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// One page per visible (sub)command, gzipped with no timestamp in the header (Debian
/// policy §12.1: man pages compressed with `gzip -9n`; the same build gives the same bytes).
fn write_man_pages(cli: clap::Command, dir: &Path) -> anyhow::Result<()> {
    let mut cli = cli.disable_help_subcommand(true);
    cli.build();
    let mut pages = vec![cli.clone()];
    pages.extend(cli.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    for page in pages {
        let man = clap_mangen::Man::new(page);
        let path = dir.join(format!("{}.gz", man.get_filename()));
        let mut roff = Vec::new();
        man.render(&mut roff).context("cannot render a man page")?;
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let mut gz = flate2::GzBuilder::new().write(file, flate2::Compression::best());
        gz.write_all(&roff)
            .and_then(|()| gz.finish().map(drop))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
