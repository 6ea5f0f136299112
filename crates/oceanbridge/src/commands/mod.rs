//! One module per subcommand; each has an `Args` struct (clap) and a `run` function.

pub mod assets;
pub mod check_config;
pub mod common;
pub mod decode;
pub mod demo;
pub mod diagnose;
pub mod ha;
pub mod init;
pub mod record;
pub mod replay;
pub mod run;
pub mod set;
pub mod simulate;
pub mod states;
