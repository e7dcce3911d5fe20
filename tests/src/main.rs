//! The `strata-migrate` binary; everything is in [`strata_migrate::cli`].

fn main() -> std::process::ExitCode {
    strata_migrate::cli::main()
}
