//! Secrets in a container's environment. A value in the environment is visible to anyone who
//! can `docker inspect` the container or read `/proc/PID/environ`, and to every process the
//! workload starts; a secret belongs in a file the engine mounts (Docker and compose secrets
//! under `/run/secrets`, a Kubernetes Secret volume), named by a `*_FILE` variable where the
//! image supports one.
//!
//! The same holds for a secret in the image: a key or a credentials file read from the image's
//! own files ships with every copy of the image. A file read from the container's root is
//! flagged by its name (a private key, `.env`, `.netrc`, `.pgpass`, cloud and registry
//! credentials...), unless it is where the engines mount secrets.
//!
//! A variable is flagged by its name (`DB_PASSWORD`, `API_TOKEN`...) or by the shape of its
//! value (an AWS access key id, a private key, a JWT, a URL with a password...). Only the name
//! and the reason are ever kept: the value is looked at once, when the engine describes the
//! container, and dropped.

use serde::{Deserialize, Serialize};

/// A variable that looks like a secret, without its value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SecretEnv {
    pub name: String,
    /// What gave it away: `its name`, or what its value looks like.
    pub why: String,
}

/// A container's variable that looks like a secret, as the settings file lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SecretFinding {
    pub container: String,
    pub variable: String,
    pub why: String,
}

impl SecretFinding {
    /// One line: what was found and what to do, never the value.
    pub fn warning(&self) -> String {
        format!(
            "container {}: environment variable {} looks like a secret ({}); {}",
            self.container,
            self.variable,
            self.why,
            advice(&self.variable)
        )
    }
}

/// A file the workload read from its container's root that looks like a secret.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SecretFile {
    pub container: String,
    pub path: String,
    /// What gave it away.
    pub why: String,
}

impl SecretFile {
    /// One line: what was found and what to do, never the contents.
    pub fn warning(&self) -> String {
        format!(
            "container {}: it read {} from its image, which looks like {}; a secret baked into an image ships with every copy of it: mount it at run time instead, as a Docker or compose secret (/run/secrets/NAME) or a Kubernetes Secret volume, named by a *_FILE variable if the image reads one",
            self.container, self.path, self.why
        )
    }
}

/// Where engines mount secrets (Docker and compose secrets, Kubernetes service account
/// tokens), and trees of public material or kernel files that only look like secrets.
const NOT_SECRET_FILES: &[&str] = &[
    "/run/secrets",
    "/var/run/secrets",
    "/proc",
    "/sys",
    "/dev",
    "/etc/ssl/certs",
    "/usr/share/ca-certificates",
    "/etc/ca-certificates",
    "/etc/pki/ca-trust",
    "/usr/lib/ssl/certs",
];

/// File names that hold secrets, exactly.
const SECRET_FILE_NAMES: &[(&str, &str)] = &[
    (".env", "a dotenv file of secrets"),
    (".netrc", "a .netrc with login passwords"),
    (".pgpass", "a PostgreSQL password file"),
    (".my.cnf", "a MySQL client file with a password"),
    (".git-credentials", "stored Git credentials"),
    (".npmrc", "an npm configuration with registry tokens"),
    (".pypirc", "a PyPI configuration with upload credentials"),
    (".dockercfg", "Docker registry credentials"),
    ("credentials", "a credentials file"),
    ("credentials.json", "a credentials file"),
    ("id_rsa", "an SSH private key"),
    ("id_dsa", "an SSH private key"),
    ("id_ecdsa", "an SSH private key"),
    ("id_ed25519", "an SSH private key"),
    ("shadow", "the password hashes of the image's users"),
];

/// File name endings of key stores and private keys.
const SECRET_FILE_ENDINGS: &[(&str, &str)] = &[
    (".key", "a private key"),
    ("-key.pem", "a private key"),
    ("_key.pem", "a private key"),
    ("privkey.pem", "a private key"),
    (".p12", "a PKCS #12 key store"),
    (".pfx", "a PKCS #12 key store"),
    (".jks", "a Java key store"),
    (".keystore", "a key store"),
];

/// Why a file at `path` (absolute, in the container's root) looks like a secret, if it does.
/// `/etc/shadow` is the image's own, read by every login check: it counts only when it holds
/// more than locked accounts, which cinch cannot see, so it is left out.
pub fn secret_file(path: &str) -> Option<&'static str> {
    if NOT_SECRET_FILES
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
        || path == "/etc/shadow"
    {
        return None;
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    if path.ends_with("/.docker/config.json") {
        return Some("Docker registry credentials");
    }
    if path.contains("/.aws/") && name == "credentials" {
        return Some("AWS credentials");
    }
    SECRET_FILE_NAMES
        .iter()
        .find(|(n, _)| name == *n || (*n == ".env" && name.starts_with(".env.")))
        .or_else(|| SECRET_FILE_ENDINGS.iter().find(|(e, _)| name.ends_with(e)))
        .map(|(_, why)| *why)
}

/// Words of a variable name that say it holds a secret.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASS",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "PRIVATE",
];

/// Pairs of adjacent words that do (`API_KEY`, `ACCESS_KEY`).
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("API", "KEY"),
    ("ACCESS", "KEY"),
    ("SECRET", "KEY"),
    ("AUTH", "KEY"),
    ("ENCRYPTION", "KEY"),
    ("SIGNING", "KEY"),
];

/// The variables of `env` (`NAME=value` entries, as engines report them) that look like
/// secrets, sorted by name.
pub fn secret_env(env: &[String]) -> Vec<SecretEnv> {
    let mut out: Vec<SecretEnv> = env
        .iter()
        .filter_map(|entry| {
            let (name, value) = entry.split_once('=')?;
            if value.is_empty() {
                return None;
            }
            let why =
                value_shape(value).or_else(|| secret_name(name).then(|| "its name".to_owned()))?;
            Some(SecretEnv {
                name: name.to_owned(),
                why,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether a variable's name says it holds a secret. A `*_FILE` variable names a file (the
/// advice itself), not a secret.
fn secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if upper.ends_with("_FILE") || upper.ends_with("_PATH") {
        return false;
    }
    let words: Vec<&str> = upper.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    words.iter().any(|w| SECRET_WORDS.contains(w))
        || words
            .windows(2)
            .any(|w| SECRET_PAIRS.contains(&(w[0], w[1])))
}

/// What a value looks like, when it looks like a credential whatever its name.
fn value_shape(value: &str) -> Option<String> {
    let v = value.trim();
    let shape = if v.len() == 20
        && (v.starts_with("AKIA") || v.starts_with("ASIA"))
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        "an AWS access key id"
    } else if v.contains("-----BEGIN") && v.contains("PRIVATE KEY") {
        "a private key"
    } else if ["ghp_", "gho_", "ghs_", "ghu_", "github_pat_"]
        .iter()
        .any(|p| v.starts_with(p))
    {
        "a GitHub token"
    } else if ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"]
        .iter()
        .any(|p| v.starts_with(p))
    {
        "a Slack token"
    } else if v.starts_with("sk_live_") || v.starts_with("rk_live_") {
        "a Stripe key"
    } else if is_jwt(v) {
        "a JSON Web Token"
    } else if url_with_password(v) {
        "a URL with a password in it"
    } else {
        return None;
    };
    Some(format!("its value looks like {shape}"))
}

/// Three base64url parts, the first a JSON object (`eyJ` is `{"` encoded).
fn is_jwt(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && v.starts_with("eyJ")
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

/// `scheme://user:password@host...`.
fn url_with_password(v: &str) -> bool {
    let Some((_, rest)) = v.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty()))
}

/// What to do about a variable that looks like a secret.
pub fn advice(name: &str) -> String {
    format!(
        "pass it as a file instead: a Docker or compose secret (mounted at /run/secrets/NAME) or a Kubernetes Secret volume, named by {name}_FILE if the image reads one; in the environment, docker inspect, /proc/PID/environ and every child process see it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn names_and_values_that_look_like_secrets() {
        let found = secret_env(&env(&[
            "PATH=/usr/bin:/bin",
            "PWD=/srv",
            "DB_PASSWORD=hunter2",
            "POSTGRES_PASSWORD_FILE=/run/secrets/db",
            "GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "STRIPE_API_KEY=abc",
            "HOME=/root",
            "UPSTREAM=https://svc:s3cr3t@example.internal/api",
            "CLOUD=AKIAABCDEFGHIJKLMNOP",
            "EMPTY_SECRET=",
            "KEYBOARD=us",
        ]));
        let names: Vec<(&str, &str)> = found
            .iter()
            .map(|s| (s.name.as_str(), s.why.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("CLOUD", "its value looks like an AWS access key id"),
                ("DB_PASSWORD", "its name"),
                ("GITHUB_TOKEN", "its value looks like a GitHub token"),
                ("STRIPE_API_KEY", "its name"),
                (
                    "UPSTREAM",
                    "its value looks like a URL with a password in it"
                ),
            ]
        );
    }

    #[test]
    fn files_that_look_like_secrets() {
        assert_eq!(secret_file("/app/.env"), Some("a dotenv file of secrets"));
        assert_eq!(
            secret_file("/app/.env.production"),
            Some("a dotenv file of secrets")
        );
        assert_eq!(
            secret_file("/root/.ssh/id_ed25519"),
            Some("an SSH private key")
        );
        assert_eq!(
            secret_file("/etc/nginx/tls/site.key"),
            Some("a private key")
        );
        assert_eq!(
            secret_file("/srv/.docker/config.json"),
            Some("Docker registry credentials")
        );
        assert_eq!(
            secret_file("/home/a/.aws/credentials"),
            Some("AWS credentials")
        );
        // Mounted the right way, public, or the image's own.
        assert_eq!(secret_file("/run/secrets/db.key"), None);
        assert_eq!(
            secret_file("/var/run/secrets/kubernetes.io/serviceaccount/token"),
            None
        );
        assert_eq!(secret_file("/etc/ssl/certs/ca-certificates.crt"), None);
        assert_eq!(secret_file("/etc/passwd"), None);
        assert_eq!(secret_file("/etc/shadow"), None);
        assert_eq!(
            secret_file("/usr/lib/x86_64-linux-gnu/libkeyutils.so.1"),
            None
        );
        assert_eq!(secret_file("/app/.environment"), None);
    }

    #[test]
    fn a_jwt_is_recognised_by_its_shape() {
        let found = secret_env(&env(&[
            "SESSION=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        ]));
        assert_eq!(found[0].why, "its value looks like a JSON Web Token");
        assert!(secret_env(&env(&["URL=https://example.org/a.b.c"])).is_empty());
    }
}
