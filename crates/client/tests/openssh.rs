//! Interoperability with the real OpenSSH: `sshd` on 127.0.0.1 with a temporary host key
//! and keys made by `ssh-keygen` (Ed25519, ECDSA, RSA), a hashed known_hosts, and
//! `ssh-agent`. Needs `openssh-server` and `openssh-client`; the test fails, saying how
//! to install them, when they are missing.
//!
//! Note for sshd configurations: OpenSSH gates Unix socket forwarding on
//! `AllowTcpForwarding` as well as `AllowStreamLocalForwarding`; with
//! `AllowTcpForwarding no` every `direct-streamlocal` request is denied.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::{ClientError, Endpoint, ExecutorClient, SshError, TransportError, TransportOptions};
use common::{FAKE_HOSTNAME, closed_port, serve_executor_unix};

const SSHD: &str = "/usr/sbin/sshd";
const INSTALL: &str = "install OpenSSH with `apt-get install -y openssh-server openssh-client`";

/// A process we started, killed (by its PID) and reaped when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn need_tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("`{name}` is not installed: {INSTALL}"))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    run(Command::new(need_tool("ssh-keygen"))
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .args(args));
    path
}

fn pub_line(key: &Path) -> String {
    std::fs::read_to_string(format!("{}.pub", key.display())).unwrap()
}

fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Starts sshd on 127.0.0.1:`port` and waits until it accepts connections.
async fn start_sshd(dir: &Path, port: u16, host_keys: &[&Path], authorized: &Path) -> Process {
    assert!(
        Path::new(SSHD).is_file(),
        "{SSHD} is not installed: {INSTALL}"
    );
    // sshd needs its privilege separation directory (the service normally creates it).
    let privsep = Path::new("/run/sshd");
    if !privsep.is_dir() {
        std::fs::create_dir_all(privsep)
            .unwrap_or_else(|e| panic!("sshd needs {}: {e}", privsep.display()));
    }
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "ListenAddress 127.0.0.1\n\
             Port {port}\n\
             {host_keys}\
             PidFile {pid}\n\
             AuthorizedKeysFile {authorized}\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             AllowStreamLocalForwarding yes\n\
             AllowTcpForwarding local\n\
             X11Forwarding no\n\
             PermitTTY no\n\
             LogLevel VERBOSE\n",
            host_keys = host_keys
                .iter()
                .map(|k| format!("HostKey {}\n", k.display()))
                .collect::<String>(),
            pid = dir.join("sshd.pid").display(),
            authorized = authorized.display(),
        ),
    )
    .unwrap();
    run(Command::new(SSHD).arg("-t").arg("-f").arg(&config));
    let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
    let mut child = Command::new(SSHD)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config)
        .arg("-p")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
            panic!("sshd exited with {status}: {log}");
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Process(child);
        }
        assert!(
            Instant::now() < deadline,
            "sshd did not listen on {port} in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts ssh-agent on `socket` and adds `key` to it.
async fn start_agent(socket: &Path, key: &Path) -> Process {
    let child = Command::new(need_tool("ssh-agent"))
        .arg("-D")
        .arg("-a")
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent = Process(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "ssh-agent did not create its socket"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run(Command::new(need_tool("ssh-add"))
        .env("SSH_AUTH_SOCK", socket)
        .arg("-q")
        .arg(key));
    agent
}

#[tokio::test]
async fn real_openssh_sshd_interoperates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let host_key = keygen(d, "host_ed25519", &["-t", "ed25519"]);
    let host_rsa = keygen(d, "host_rsa", &["-t", "rsa", "-b", "2048"]);
    let ed = keygen(d, "id_ed25519", &["-t", "ed25519"]);
    let ec = keygen(d, "id_ecdsa", &["-t", "ecdsa", "-b", "256"]);
    let rsa = keygen(d, "id_rsa", &["-t", "rsa", "-b", "2048"]);
    let authorized = d.join("authorized_keys");
    std::fs::write(&authorized, [&ed, &ec, &rsa].map(|k| pub_line(k)).concat()).unwrap();

    let port = closed_port().await;
    let sshd = start_sshd(d, port, &[&host_key, &host_rsa], &authorized).await;

    // known_hosts as ssh-keyscan would record it, then hashed as `HashKnownHosts yes` does.
    // Only the RSA host key is recorded: the client must ask sshd for that one rather than
    // its (preferred) Ed25519 key.
    let known_hosts = d.join("known_hosts");
    let host_pub = pub_line(&host_rsa);
    let host_pub = host_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_pub}\n")).unwrap();
    run(Command::new(need_tool("ssh-keygen"))
        .arg("-H")
        .arg("-f")
        .arg(&known_hosts)
        .stdout(Stdio::null()));
    assert!(
        std::fs::read_to_string(&known_hosts)
            .unwrap()
            .starts_with("|1|")
    );

    let socket = d.join("executor.sock");
    let _executor = serve_executor_unix(&socket);
    let user = current_user();
    let endpoint = |sock: &Path| -> Endpoint {
        format!("ssh://{user}@127.0.0.1:{port}{}", sock.display())
            .parse()
            .unwrap()
    };
    let opts = |key: Option<&Path>| TransportOptions {
        ssh_private_key_file: key.map(Path::to_path_buf),
        ssh_known_hosts_file: Some(known_hosts.clone()),
        connect_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let connect = |e: Endpoint, o: TransportOptions| async move {
        tokio::time::timeout(
            Duration::from_secs(30),
            ExecutorClient::connect_with("node-1", &e, &o),
        )
        .await
        .expect("connect did not finish in 30 s")
    };
    let log = || std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default();

    // Every key type OpenSSH writes authenticates; calls go through the tunnel.
    for key in [&ed, &ec, &rsa] {
        let mut c = connect(endpoint(&socket), opts(Some(key)))
            .await
            .unwrap_or_else(|e| panic!("{} failed: {e}\nsshd log:\n{}", key.display(), log()));
        assert_eq!(c.host_facts().await.unwrap().hostname, FAKE_HOSTNAME);
    }

    // The agent, when no key file is given.
    let agent_sock = d.join("agent.sock");
    let _agent = start_agent(&agent_sock, &rsa).await;
    let agent_opts = TransportOptions {
        ssh_agent_socket: Some(agent_sock),
        ..opts(None)
    };
    let mut c = connect(endpoint(&socket), agent_opts)
        .await
        .unwrap_or_else(|e| panic!("agent auth failed: {e}\nsshd log:\n{}", log()));
    c.node_status().await.unwrap();
    drop(c);

    let ssh_err = |e: ClientError| match e {
        ClientError::Connect {
            source: TransportError::Ssh(e),
            ..
        } => *e,
        other => panic!("expected an SSH error, got {other}"),
    };

    // No executor at the path: sshd refuses the forward.
    let missing = d.join("missing.sock");
    let e = ssh_err(
        connect(endpoint(&missing), opts(Some(&ed)))
            .await
            .unwrap_err(),
    );
    let msg = e.to_string();
    assert!(matches!(e, SshError::ForwardRefused { .. }), "{msg}");
    assert!(msg.contains(&missing.display().to_string()), "{msg}");

    // A key sshd does not know.
    let stranger = keygen(d, "id_stranger", &["-t", "ed25519"]);
    let e = ssh_err(
        connect(endpoint(&socket), opts(Some(&stranger)))
            .await
            .unwrap_err(),
    );
    assert!(matches!(e, SshError::AuthFailed { .. }), "{e}");

    // A known_hosts recording another key for this host.
    let other_host = keygen(d, "other_host", &["-t", "rsa", "-b", "2048"]);
    let other_pub = pub_line(&other_host);
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {other_pub}")).unwrap();
    let e = ssh_err(
        connect(endpoint(&socket), opts(Some(&ed)))
            .await
            .unwrap_err(),
    );
    assert!(matches!(e, SshError::HostKeyChanged { .. }), "{e}");

    // Let sshd reap its per-connection processes before it is killed.
    wait_for_children_to_exit(sshd.0.id(), Duration::from_secs(10)).await;
}

/// Waits (bounded) until process `pid` has no child processes left.
async fn wait_for_children_to_exit(pid: u32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && has_children(pid) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn has_children(pid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        std::fs::read_to_string(e.path().join("stat"))
            .ok()
            // The parent PID is the second field after the parenthesised command name.
            .and_then(|stat| {
                let rest = stat.rsplit_once(')')?.1.to_string();
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            })
            == Some(pid)
    })
}
