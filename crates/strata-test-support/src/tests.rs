//! Tests against the installed PostgreSQL programs.

use std::process::Command;

use crate::location::{OWNER_FILE, Owner, sweep};
use crate::toolchain::{Toolchain, parse_version};
use crate::{HarnessError, PrivateCluster};

#[test]
fn a_cluster_answers_restarts_stops_and_starts_again() -> Result<(), HarnessError> {
    let cluster = PrivateCluster::start()?;
    assert_eq!(cluster.psql("postgres", "select 1")?, "1");
    let before = cluster.psql("postgres", "select pg_postmaster_start_time()")?;

    cluster.restart()?;
    assert!(cluster.is_running());
    assert_eq!(cluster.psql("postgres", "select 1")?, "1");
    let after = cluster.psql("postgres", "select pg_postmaster_start_time()")?;
    assert_ne!(before, after, "restart must start a new server");

    cluster.stop()?;
    assert!(!cluster.is_running());
    assert!(matches!(cluster.psql("postgres", "select 1"), Err(HarnessError::Psql { .. })));

    cluster.start_again()?;
    assert!(cluster.is_running());
    assert_eq!(cluster.psql("postgres", "select 1")?, "1");
    Ok(())
}

#[test]
fn the_cluster_is_what_it_says() -> Result<(), HarnessError> {
    let cluster = PrivateCluster::start_with(&[("max_connections", "50")])?;
    let port = cluster.port();
    assert_ne!(port, 5432);
    assert_eq!(cluster.url("app"), format!("postgres://postgres@127.0.0.1:{port}/app"));
    assert!(cluster.data_dir().join("PG_VERSION").is_file());
    let shown = cluster.psql(
        "postgres",
        "select current_setting('max_connections'), current_setting('fsync'), \
         current_setting('listen_addresses'), current_setting('data_directory'), \
         current_setting('server_encoding'), current_user",
    )?;
    let data_dir = cluster.data_dir().display();
    assert_eq!(shown, format!("50|off|127.0.0.1|{data_dir}|UTF8|postgres"));
    Ok(())
}

#[test]
fn psql_runs_several_statements_and_reports_the_failing_one() -> Result<(), HarnessError> {
    let cluster = PrivateCluster::start()?;
    cluster.psql("postgres", "create database app; ")?;
    let out = cluster.psql(
        "app",
        "create table t (n int); insert into t values (1), (2); select sum(n) from t;",
    )?;
    assert_eq!(out, "3");
    let error = cluster.psql("app", "select * from missing_table").err();
    let message = error.map(|error| error.to_string()).unwrap_or_default();
    assert!(message.contains("database app") && message.contains("missing_table"), "{message}");
    Ok(())
}

#[test]
fn drop_stops_the_server_and_removes_its_directory() -> Result<(), HarnessError> {
    let cluster = PrivateCluster::start()?;
    let dir = cluster.data_dir().parent().map(std::path::Path::to_path_buf);
    let port = cluster.port();
    assert!(dir.as_ref().is_some_and(|dir| dir.join(OWNER_FILE).is_file()));
    drop(cluster);
    assert!(dir.is_some_and(|dir| !dir.exists()));
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(std::net::TcpStream::connect(address).is_err(), "the server still listens on {port}");
    Ok(())
}

#[test]
fn clusters_started_at_once_get_their_own_ports_and_directories() -> Result<(), HarnessError> {
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(PrivateCluster::start);
        let b = scope.spawn(PrivateCluster::start);
        (a.join(), b.join())
    });
    let (Ok(a), Ok(b)) = (a, b) else { panic!("a start panicked") };
    let (a, b) = (a?, b?);
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());
    assert_eq!(a.psql("postgres", "select 1")?, "1");
    assert_eq!(b.psql("postgres", "select 1")?, "1");
    Ok(())
}

#[test]
fn a_cluster_whose_test_process_died_is_stopped_and_removed() -> Result<(), HarnessError> {
    let cluster = PrivateCluster::start()?;
    let dir = cluster.data_dir().parent().map(std::path::Path::to_path_buf);
    let Some(dir) = dir else { panic!("a data directory has a parent") };
    let Some(base) = dir.parent() else { panic!("a cluster directory has a parent") };
    // A process that has exited: its pid names no live process (or another one, started later).
    let mut gone = Command::new("true")
        .spawn()
        .map_err(|source| HarnessError::Spawn { program: "true".into(), source })?;
    let _ = gone.wait();
    let dead = Owner { pid: gone.id(), started: Some(0) };
    std::fs::write(dir.join(OWNER_FILE), dead.to_string()).map_err(|source| HarnessError::Io {
        action: "write",
        path: dir.clone(),
        source,
    })?;

    sweep(&Toolchain::discover()?, base);

    assert!(!dir.exists(), "the stale cluster {} is still there", dir.display());
    assert!(!cluster.is_running());
    Ok(())
}

#[test]
fn the_newest_installed_version_comes_first() {
    assert_eq!(parse_version("15"), Some(vec![15]));
    assert_eq!(parse_version("9.6"), Some(vec![9, 6]));
    assert_eq!(parse_version("common"), None);
    assert!(parse_version("16") > parse_version("9.6"));
}
