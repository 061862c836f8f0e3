//! `pooya-testpg`: starts the harness's throwaway PostgreSQL cluster (or
//! uses `POOYA_TEST_POSTGRES_URL`'s server), prints `url=`, `dir=`,
//! `pid=` and `database=` (a fresh database) lines and `ready`, and holds the cluster until standard input
//! closes (Ctrl-D) or the process is killed; the cluster is then removed.
//!
//! For poking at a test database by hand (`psql "$url"`), and the process
//! the harness's own tests kill to prove that nothing is left behind.

use std::io::Write;
use std::process::ExitCode;

use pooya_testpg::TestPostgres;

fn main() -> ExitCode {
    let pg = match TestPostgres::shared() {
        Ok(pg) => pg,
        Err(e) => {
            eprintln!("pooya-testpg: {e} ({})", e.code());
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let mut lines = format!("url={}\n", pg.admin_url());
    if let Some(dir) = pg.data_dir() {
        lines.push_str(&format!("dir={}\n", dir.display()));
    }
    if let Some(pid) = pg.postmaster_pid() {
        lines.push_str(&format!("pid={pid}\n"));
    }
    match pg.fresh_database() {
        Ok(url) => lines.push_str(&format!("database={url}\n")),
        Err(e) => {
            eprintln!("pooya-testpg: {e} ({})", e.code());
            return ExitCode::FAILURE;
        }
    }
    lines.push_str("ready\n");
    if out
        .write_all(lines.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(out);
    // Hold until end of file; what is typed is ignored.
    let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
    ExitCode::SUCCESS
}
