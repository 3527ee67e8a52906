//! Secrets in a container's environment. A value in the environment is visible to anyone who
//! can `docker inspect` the container or read `/proc/PID/environ`, and to every process the
//! workload starts; a secret belongs in a file the engine mounts (Docker and compose secrets
//! under `/run/secrets`, a Kubernetes Secret volume), named by a `*_FILE` variable where the
//! image supports one.
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
    fn a_jwt_is_recognised_by_its_shape() {
        let found = secret_env(&env(&[
            "SESSION=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        ]));
        assert_eq!(found[0].why, "its value looks like a JSON Web Token");
        assert!(secret_env(&env(&["URL=https://example.org/a.b.c"])).is_empty());
    }
}
