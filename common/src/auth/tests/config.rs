//! The auth keys from file and environment, secrets from files, and config errors that name
//! their key.

// figment's `Jail` fixes the closure's error type.
#![allow(clippy::result_large_err)]

use crate::auth::config::{load, AuthConfig, OidcProviderConfig, DEFAULT_AUTH_SUBJECT};
use crate::auth::Authenticator;
use std::path::Path;

fn loaded() -> Result<AuthConfig, figment::Error> {
    load(Some(Path::new("tributary.toml"))).map_err(|e| e.to_string().into())
}

#[test]
fn defaults_need_no_file() {
    figment::Jail::expect_with(|_| {
        let c = load(None).map_err(|e| e.to_string())?;
        assert_eq!(c, AuthConfig::default());
        assert!(!c.enable_pre_authentication);
        let p = OidcProviderConfig::default();
        assert_eq!(p.auth_subjects, [DEFAULT_AUTH_SUBJECT]);
        assert_eq!((p.leeway_secs, p.jwks_max_age_secs), (30, 3600));
        Ok(())
    });
}

#[test]
fn file_then_env_with_dittos_variable_below_ours() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "tributary.toml",
            r#"
            listen = "127.0.0.1:7100"   # a server key: ignored here
            pre_authentication_proxies = ["10.0.0.0/8"]
            [oidc.myprovider]
            issuer = "localhost:9000"
            audiences = ["tributary"]
            ca_file = "ca.pem"
            auth_subjects = ["{{ jwt:sub }}", "{{ jwt:sub }}/{{ jwt:scp }}"]
            "#,
        )?;
        jail.set_env("ENABLE_PRE_AUTHENTICATION", "true");
        jail.set_env("TRIBUTARY_OIDC__MYPROVIDER__LEEWAY_SECS", "5");
        jail.set_env(
            "TRIBUTARY_OIDC__OTHER__ISSUERS",
            "[idp.example/one, idp.example/two]",
        );
        let c = loaded()?;
        assert!(
            c.enable_pre_authentication,
            "Ditto's ENABLE_PRE_AUTHENTICATION"
        );
        assert_eq!(c.pre_authentication_proxies, ["10.0.0.0/8"]);
        let p = &c.oidc["myprovider"];
        assert_eq!(p.issuer, "localhost:9000");
        assert_eq!(p.leeway_secs, 5);
        assert_eq!(p.auth_subjects.len(), 2);
        assert_eq!(
            c.oidc["other"].issuers,
            ["idp.example/one", "idp.example/two"]
        );
        assert_eq!(c.oidc["other"].auth_subjects, [DEFAULT_AUTH_SUBJECT]);

        jail.set_env("TRIBUTARY_ENABLE_PRE_AUTHENTICATION", "false");
        assert!(
            !loaded()?.enable_pre_authentication,
            "ours wins over Ditto's"
        );
        Ok(())
    });
}

#[test]
fn lists_by_index_as_dittos_system_properties() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("tributary.toml", "")?;
        let var = |i: u32| format!("TRIBUTARY_OIDC__MYPROVIDER__AUTH_SUBJECTS__{i}");
        jail.set_env("TRIBUTARY_OIDC__MYPROVIDER__ISSUER", "localhost:9000");
        jail.set_env(var(0), "{{ jwt:sub }}");
        jail.set_env(var(1), "{{ jwt:sub }}/{{ jwt:scp }}");
        jail.set_env(var(10), "{{ jwt:roles/support }}");
        jail.set_env("TRIBUTARY_PRE_AUTHENTICATION_PROXIES", "nginx-proxy");
        let c = loaded()?;
        assert_eq!(
            c.oidc["myprovider"].auth_subjects,
            [
                "{{ jwt:sub }}",
                "{{ jwt:sub }}/{{ jwt:scp }}",
                "{{ jwt:roles/support }}"
            ]
        );
        assert_eq!(c.pre_authentication_proxies, ["nginx-proxy"], "one string");
        Ok(())
    });
}

#[test]
fn secrets_from_files() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("tributary.toml", "devops_user = \"devops\"\n")?;
        jail.create_file("password", "foobar\n")?;
        jail.create_file("token", "tok-123")?;
        jail.set_env("TRIBUTARY_DEVOPS_PASSWORD_FILE", "password");
        jail.set_env("TRIBUTARY_DEVOPS_TOKEN_FILE", "token");
        let c = loaded()?;
        assert_eq!(
            c.devops_password, "foobar",
            "the trailing newline is not part of it"
        );
        assert_eq!(c.devops_token, "tok-123");
        assert!(c.devops_password_file.is_empty());
        assert_eq!(c.clone().with_secret_files().map_err(|e| e.to_string())?, c);
        let shown = format!(
            "{c:?} {}",
            serde_json::to_string(&c).map_err(|e| e.to_string())?
        );
        assert!(
            !shown.contains("foobar") && !shown.contains("tok-123"),
            "{shown}"
        );

        jail.set_env("TRIBUTARY_DEVOPS_TOKEN", "also");
        let both = load(Some(Path::new("tributary.toml"))).expect_err("both forms accepted");
        assert!(
            both.to_string()
                .contains("`devops_token` and `devops_token_file`"),
            "{both}"
        );

        jail.set_env("TRIBUTARY_DEVOPS_TOKEN", "");
        jail.set_env("TRIBUTARY_DEVOPS_TOKEN_FILE", "missing-token");
        let missing = load(Some(Path::new("tributary.toml"))).expect_err("missing file accepted");
        let msg = missing.to_string();
        assert!(
            msg.contains("devops_token_file") && msg.contains("missing-token"),
            "{msg}"
        );

        jail.create_file("empty", "\n")?;
        jail.set_env("TRIBUTARY_DEVOPS_TOKEN_FILE", "empty");
        let empty = load(Some(Path::new("tributary.toml"))).expect_err("empty file accepted");
        assert!(empty.to_string().contains("is empty"), "{empty}");
        Ok(())
    });
}

#[test]
fn a_bad_value_names_its_key() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("TRIBUTARY_ENABLE_PRE_AUTHENTICATION", "maybe");
        let err = load(None).expect_err("bad bool accepted").to_string();
        assert!(err.contains("enable_pre_authentication"), "{err}");
        Ok(())
    });
    figment::Jail::expect_with(|jail| {
        jail.set_env("TRIBUTARY_OIDC__P__LEEWAY_SECS", "soon");
        let err = load(None).expect_err("bad number accepted").to_string();
        assert!(err.contains("oidc.p.leeway_secs"), "{err}");
        Ok(())
    });
}

fn refused(provider: OidcProviderConfig, name: &str) -> String {
    let config = AuthConfig {
        oidc: [(name.to_string(), provider)].into(),
        ..AuthConfig::default()
    };
    Authenticator::new(&config)
        .expect_err("bad provider accepted")
        .to_string()
}

#[test]
fn a_bad_provider_names_its_key() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        rcgen::generate_simple_self_signed(vec!["x".into()])?
            .cert
            .pem(),
    )?;
    let ok = OidcProviderConfig {
        issuer: "idp.example".into(),
        ca_file: ca.display().to_string(),
        ..OidcProviderConfig::default()
    };
    assert!(Authenticator::new(&AuthConfig {
        oidc: [("p".to_string(), ok.clone())].into(),
        ..AuthConfig::default()
    })
    .is_ok());
    let cases = [
        (
            OidcProviderConfig {
                issuer: String::new(),
                ..ok.clone()
            },
            "p",
            "oidc.p.issuer",
        ),
        (
            OidcProviderConfig {
                issuer: "http://idp".into(),
                ..ok.clone()
            },
            "p",
            "HTTPS",
        ),
        (
            OidcProviderConfig {
                ca_file: String::new(),
                ..ok.clone()
            },
            "p",
            "oidc.p.ca_file",
        ),
        (
            OidcProviderConfig {
                ca_file: "/nope/ca.pem".into(),
                ..ok.clone()
            },
            "p",
            "/nope/ca.pem",
        ),
        (
            OidcProviderConfig {
                jwks_file: "/nope/jwks.json".into(),
                ..ok.clone()
            },
            "p",
            "not both",
        ),
        (
            OidcProviderConfig {
                jwks_file: "/nope/jwks.json".into(),
                ca_file: String::new(),
                ..ok.clone()
            },
            "p",
            "oidc.p.jwks_file",
        ),
        (
            OidcProviderConfig {
                auth_subjects: vec!["{{ jwt:sub }}".into(), "{{ jwt:sub | fn:nope() }}".into()],
                ..ok.clone()
            },
            "p",
            "oidc.p.auth_subjects.1",
        ),
        (ok.clone(), "my:provider", "letters, digits"),
    ];
    for (provider, name, expected) in cases {
        let err = refused(provider, name);
        assert!(err.contains(expected), "expected {expected:?} in: {err}");
    }
    let twice = Authenticator::new(&AuthConfig {
        oidc: [("a".to_string(), ok.clone()), ("b".to_string(), ok)].into(),
        ..AuthConfig::default()
    })
    .expect_err("one issuer in two providers accepted")
    .to_string();
    assert!(twice.contains("idp.example"), "{twice}");
    Ok(())
}
