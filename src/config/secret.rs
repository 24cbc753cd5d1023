//! The SMTP password: a [`Secret`] that reads from any scalar and never shows its value.
//!
//! A password is whatever text its owner typed, so a value that TOML or the environment
//! would read as a number or a boolean is still a password:
//!
//! - from `NETDIGEST_MAIL__PASSWORD`: always the variable's exact text (figment would
//!   otherwise read `0012` as the number 12, `1.50` as 1.5 and `yes` as a boolean);
//! - from TOML: a string as written; an integer as its decimal digits (`password = 12345678`
//!   is `"12345678"`); a float as Rust prints the `f64` TOML parsed (`1.50` becomes `"1.5"`,
//!   so quote such a password); a boolean as `"true"` or `"false"`.
//!
//! No error, log line, `Debug` or serialisation ever contains the value.

use std::fmt;

use figment::value::{Dict, Map, Value};
use figment::{Error, Metadata, Profile, Provider};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string: redacted in `Debug` and serialisation, accepted from any scalar.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; call only where it is handed to the SMTP client.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"<redacted>\")")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// Visitor methods that keep a value that is not text (a TOML number or boolean given as
/// the password) as its text.
macro_rules! visit_as_text {
    ($($visit:ident: $t:ty),* $(,)?) => {
        $(fn $visit<E: de::Error>(self, v: $t) -> Result<Secret, E> {
            Ok(Secret(v.to_string()))
        })*
    };
}

struct SecretVisitor;

impl Visitor<'_> for SecretVisitor {
    type Value = Secret;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a password (text, number or boolean)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }
    visit_as_text!(
        visit_char: char,
        visit_bool: bool,
        visit_i64: i64,
        visit_u64: u64,
        visit_i128: i128,
        visit_u128: u128,
        visit_f64: f64,
    );
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

/// The environment variable that carries the password (`mail.password`).
pub const PASSWORD_ENV: &str = "NETDIGEST_MAIL__PASSWORD";
/// [`PASSWORD_ENV`] without the prefix, as figment's `Env` provider sees it.
pub(super) const PASSWORD_ENV_KEY: &str = "MAIL__PASSWORD";

/// `mail.password` from [`PASSWORD_ENV`] as its exact text (never parsed as a number,
/// float or boolean, never trimmed). The name matched is case-insensitive, as figment's
/// `Env` matches the other variables.
pub(super) struct PasswordEnv;

impl Provider for PasswordEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("`{PASSWORD_ENV}` environment variable"))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let value = std::env::vars_os().find_map(|(k, v)| {
            k.to_str()
                .is_some_and(|k| k.trim().eq_ignore_ascii_case(PASSWORD_ENV))
                .then(|| v.to_string_lossy().into_owned())
        });
        let mut dict = Dict::new();
        if let Some(pw) = value {
            let mut mail = Dict::new();
            mail.insert("password".into(), Value::from(pw));
            dict.insert("mail".into(), Value::from(mail));
        }
        Ok(Profile::Default.collect(dict))
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error"
)]
mod tests {
    use super::super::{Config, sourced_values};
    use super::*;
    use figment::Jail;

    /// Loads the config in the jail and checks the password and that neither `Debug`
    /// nor `print-config`'s lines show it.
    fn loads_as(expected: &str) -> Result<(), Error> {
        let fig = Config::figment();
        let cfg = Config::from_figment(&fig).map_err(|e| e.to_string())?;
        assert_eq!(
            cfg.mail.password.as_ref().map(Secret::expose),
            Some(expected)
        );
        assert_eq!(
            format!("{:?}", cfg.mail.password),
            "Some(Secret(\"<redacted>\"))"
        );
        // Whole-config Debug: only for values that cannot be another field's text.
        let distinctive = expected.len() >= 4 && !["true", "false"].contains(&expected);
        let dbg = format!("{cfg:?}");
        assert!(!distinctive || !dbg.contains(expected), "{dbg}");
        let lines = sourced_values(&fig).map_err(|e| e.to_string())?;
        let pw = lines.iter().find(|l| l.key == "mail.password");
        assert_eq!(pw.map(|l| l.value.as_str()), Some("\"<redacted>\""));
        let lines = format!("{lines:?}");
        assert!(!distinctive || !lines.contains(expected), "{lines}");
        Ok(())
    }

    #[test]
    fn any_scalar_from_the_environment_is_its_exact_text() {
        for raw in [
            "12345678",
            "0012",
            "-7",
            "1.50",
            "1e3",
            "true",
            "FALSE",
            "[1, 2]",
            " padded ",
            "abcd efgh ijkl mnop",
        ] {
            Jail::expect_with(|jail| {
                jail.set_env("NETDIGEST_CONFIG", "missing.toml");
                jail.set_env(PASSWORD_ENV, raw);
                loads_as(raw)
            });
        }
    }

    #[test]
    fn any_scalar_from_toml_is_a_password() {
        for (toml, expected) in [
            ("12345678", "12345678"),
            ("-42", "-42"),
            ("0x1F", "31"),
            ("1.50", "1.5"),
            ("2.5e3", "2500"),
            ("true", "true"),
            ("false", "false"),
            ("\"0012\"", "0012"),
        ] {
            Jail::expect_with(|jail| {
                jail.create_file("nd.toml", &format!("[mail]\npassword = {toml}\n"))?;
                jail.set_env("NETDIGEST_CONFIG", "nd.toml");
                loads_as(expected)
            });
        }
    }

    #[test]
    fn environment_beats_the_file_and_is_named_as_the_source() {
        Jail::expect_with(|jail| {
            jail.create_file("nd.toml", "[mail]\npassword = 1111\n")?;
            jail.set_env("NETDIGEST_CONFIG", "nd.toml");
            jail.set_env(PASSWORD_ENV, "98765");
            loads_as("98765")?;
            let lines = sourced_values(&Config::figment()).map_err(|e| e.to_string())?;
            let pw = lines
                .iter()
                .find(|l| l.key == "mail.password")
                .expect("password line");
            assert_eq!(pw.source, "env NETDIGEST_MAIL__PASSWORD");
            assert_eq!(pw.value, "\"<redacted>\"");
            Ok(())
        });
    }

    #[test]
    fn a_refused_password_is_not_in_the_error() {
        Jail::expect_with(|jail| {
            jail.create_file("nd.toml", "[mail]\npassword = [31415926, 27182818]\n")?;
            jail.set_env("NETDIGEST_CONFIG", "nd.toml");
            let err = Config::load()
                .expect_err("a list is no password")
                .to_string();
            assert!(err.contains("mail.password"), "{err}");
            assert!(!err.contains("3141") && !err.contains("2718"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn no_password_without_the_variable() {
        Jail::expect_with(|jail| {
            jail.set_env("NETDIGEST_CONFIG", "missing.toml");
            let cfg = Config::load().map_err(|e| e.to_string())?;
            assert!(cfg.mail.password.is_none());
            Ok(())
        });
    }
}
