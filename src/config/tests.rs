use super::*;
use figment::Jail;

#[test]
fn defaults_validate() {
    Config::default().validate().expect("defaults are valid");
}

#[test]
fn precedence_default_file_env() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "nd.toml",
            "[capture]\ninterface = \"eth0\"\nsnaplen = 256\n[mail]\nto = \"a@example.org\"\n",
        )?;
        jail.set_env("NETDIGEST_CONFIG", "nd.toml");
        jail.set_env("NETDIGEST_CAPTURE__INTERFACE", "wlan0");
        jail.set_env("NETDIGEST_MAIL__TO", "b@example.org, c@example.org");
        let cfg = Config::load().map_err(|e| e.to_string())?;
        assert_eq!(cfg.capture.interface, "wlan0", "env beats file");
        assert_eq!(cfg.capture.snaplen, 256, "file beats default");
        assert_eq!(cfg.capture.start.to_string(), "22:00", "default kept");
        assert_eq!(cfg.mail.to, vec!["b@example.org", "c@example.org"]);
        Ok(())
    });
}

#[test]
fn mail_retries_from_the_environment() {
    Jail::expect_with(|jail| {
        jail.set_env("NETDIGEST_CONFIG", "missing.toml");
        jail.set_env("NETDIGEST_MAIL__ATTEMPTS", "2");
        jail.set_env("NETDIGEST_MAIL__RETRY_AFTER_S", "1");
        let cfg = Config::load().map_err(|e| e.to_string())?;
        assert_eq!((cfg.mail.attempts, cfg.mail.retry_after_s), (2, 1));
        let d = Config::default();
        assert_eq!((d.mail.attempts, d.mail.retry_after_s), (5, 30));
        Ok(())
    });
}

#[test]
fn unknown_key_is_an_error_naming_it() {
    Jail::expect_with(|jail| {
        jail.create_file("nd.toml", "[capture]\ninterfcae = \"eth0\"\n")?;
        jail.set_env("NETDIGEST_CONFIG", "nd.toml");
        let err = Config::load()
            .expect_err("typo must be refused")
            .to_string();
        assert!(err.contains("interfcae"), "{err}");
        Ok(())
    });
}

#[test]
fn unrelated_netdigest_vars_are_not_keys() {
    Jail::expect_with(|jail| {
        jail.set_env("NETDIGEST_CONFIG", "missing.toml");
        jail.set_env("NETDIGEST_LOG", "debug");
        Config::load().map_err(|e| e.to_string())?;
        Ok(())
    });
}

#[test]
fn bad_values_are_refused() {
    Jail::expect_with(|jail| {
        jail.set_env("NETDIGEST_CONFIG", "missing.toml");
        jail.set_env("NETDIGEST_CAPTURE__START", "25:00");
        let err = Config::load().expect_err("25:00 is no time").to_string();
        assert!(err.contains("capture.start"), "{err}");
        Ok(())
    });
}

#[test]
fn password_never_printed() {
    Jail::expect_with(|jail| {
        jail.set_env("NETDIGEST_CONFIG", "missing.toml");
        jail.set_env("NETDIGEST_MAIL__PASSWORD", "abcd efgh ijkl mnop");
        let fig = Config::figment();
        let cfg = Config::from_figment(&fig).map_err(|e| e.to_string())?;
        assert_eq!(
            cfg.mail.password.as_ref().map(Secret::expose),
            Some("abcd efgh ijkl mnop")
        );
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("abcd"), "{dbg}");
        let lines = sourced_values(&fig).map_err(|e| e.to_string())?;
        let all = format!("{lines:?}");
        assert!(!all.contains("abcd"), "{all}");
        let pw = lines
            .iter()
            .find(|l| l.key == "mail.password")
            .expect("password line");
        assert_eq!(pw.source, "env NETDIGEST_MAIL__PASSWORD");
        Ok(())
    });
}

#[test]
fn the_disk_floor_defaults_to_512_and_is_set_by_file_or_env() {
    Jail::expect_with(|jail| {
        jail.create_file("nd.toml", "[capture]\nmin_free_mb = 2048\n")?;
        jail.set_env("NETDIGEST_CONFIG", "missing.toml");
        assert_eq!(
            Config::load()
                .map_err(|e| e.to_string())?
                .capture
                .min_free_mb,
            512
        );
        jail.set_env("NETDIGEST_CONFIG", "nd.toml");
        assert_eq!(
            Config::load()
                .map_err(|e| e.to_string())?
                .capture
                .min_free_mb,
            2048
        );
        jail.set_env("NETDIGEST_CAPTURE__MIN_FREE_MB", "0");
        assert_eq!(
            Config::load()
                .map_err(|e| e.to_string())?
                .capture
                .min_free_mb,
            0
        );
        jail.set_env("NETDIGEST_CAPTURE__MIN_FREE_MB", "10%");
        let err = Config::load().expect_err("not a number").to_string();
        assert!(err.contains("capture.min_free_mb"), "{err}");
        Ok(())
    });
}

#[test]
fn max_rows_default_file_and_env() {
    Jail::expect_with(|jail| {
        jail.set_env("NETDIGEST_CONFIG", "nd.toml");
        jail.create_file("nd.toml", "")?;
        let cfg = Config::load().map_err(|e| e.to_string())?;
        assert_eq!(cfg.report.max_rows, 100);
        jail.create_file("nd.toml", "[report]\nmax_rows = 7\n")?;
        assert_eq!(
            Config::load().map_err(|e| e.to_string())?.report.max_rows,
            7
        );
        jail.set_env("NETDIGEST_REPORT__MAX_ROWS", "3");
        assert_eq!(
            Config::load().map_err(|e| e.to_string())?.report.max_rows,
            3
        );
        Ok(())
    });
}

#[test]
fn names_from_file_and_env_in_every_mac_spelling() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "nd.toml",
            "[names]\n\"AA-BB-CC-DD-EE-01\" = \"kitchen-tv\"\n\"192.168.1.23\" = \" nas \"\n\"fd00::10\" = \"printer\"\n",
        )?;
        jail.set_env("NETDIGEST_CONFIG", "nd.toml");
        jail.set_env("NETDIGEST_NAMES__AABBCCDDEE02", "phone");
        jail.set_env("NETDIGEST_NAMES__aa-bb-cc-dd-ee-03", "laptop");
        let cfg = Config::load().map_err(|e| e.to_string())?;
        let labels = cfg.labels().map_err(|e| e.to_string())?;
        let want: Vec<(&str, &str)> = vec![
            ("192.168.1.23", "nas"),
            ("aa:bb:cc:dd:ee:01", "kitchen-tv"),
            ("aa:bb:cc:dd:ee:02", "phone"),
            ("aa:bb:cc:dd:ee:03", "laptop"),
            ("fd00::10", "printer"),
        ];
        let got: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, want);
        Ok(())
    });
}

#[test]
fn the_whole_names_table_in_one_variable() {
    Jail::expect_with(|jail| {
        jail.set_env("NETDIGEST_CONFIG", "missing.toml");
        jail.set_env(
            "NETDIGEST_NAMES",
            "{\"192.168.1.23\" = \"nas\", \"aa:bb:cc:dd:ee:ff\" = \"kitchen-tv\"}",
        );
        let cfg = Config::load().map_err(|e| e.to_string())?;
        let labels = cfg.labels().map_err(|e| e.to_string())?;
        assert_eq!(labels.get("192.168.1.23").map(String::as_str), Some("nas"));
        assert_eq!(
            labels.get("aa:bb:cc:dd:ee:ff").map(String::as_str),
            Some("kitchen-tv")
        );
        Ok(())
    });
}

#[test]
fn a_names_key_that_is_no_address_is_named() {
    Jail::expect_with(|jail| {
        jail.create_file("nd.toml", "[names]\nkitchen = \"tv\"\n")?;
        jail.set_env("NETDIGEST_CONFIG", "nd.toml");
        let err = Config::load().expect_err("no address").to_string();
        assert!(err.contains("names.\"kitchen\""), "{err}");
        assert!(err.contains("not a MAC address"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        // An unquoted IP is a dotted key (a table): the message says to quote it.
        jail.create_file("nd.toml", "[names]\n192.168.1.23 = \"nas\"\n")?;
        let err = Config::load().expect_err("a table").to_string();
        assert!(err.contains("names") && err.contains("quoted"), "{err}");
        jail.create_file("nd.toml", "[names]\n\"192.168.1.23\" = \"  \"\n")?;
        let err = Config::load().expect_err("empty").to_string();
        assert!(err.contains("empty label"), "{err}");
        Ok(())
    });
}

#[test]
fn baseline_thresholds_default_file_and_env() {
    Jail::expect_with(|jail| {
        jail.set_env("NETDIGEST_CONFIG", "nd.toml");
        jail.create_file("nd.toml", "")?;
        let f = Config::load().map_err(|e| e.to_string())?.findings;
        assert_eq!(
            (f.baseline_nights, f.baseline_names, f.awake_min_bytes),
            (7, 50, 100_000)
        );
        assert_eq!((f.spike_factor, f.spike_min_bytes), (5.0, 1_000_000));
        assert_eq!(f.awake_factor, 10.0);
        assert_eq!(
            (f.new_destination_min_bytes, f.new_destinations_max),
            (20_000, 3)
        );
        jail.create_file(
            "nd.toml",
            "[findings]\nbaseline_nights = 3\nspike_factor = 2.5\nawake_min_bytes = 5000\n",
        )?;
        jail.set_env("NETDIGEST_FINDINGS__NEW_DESTINATIONS_MAX", "1");
        let f = Config::load().map_err(|e| e.to_string())?.findings;
        assert_eq!(
            (f.baseline_nights, f.spike_factor, f.awake_min_bytes),
            (3, 2.5, 5000)
        );
        assert_eq!(f.new_destinations_max, 1);
        jail.set_env("NETDIGEST_FINDINGS__BASELINE_NIGHTS", "0");
        let err = Config::load().expect_err("no nights").to_string();
        assert!(err.contains("findings.baseline_nights"), "{err}");
        jail.set_env("NETDIGEST_FINDINGS__BASELINE_NIGHTS", "7");
        jail.set_env("NETDIGEST_FINDINGS__SPIKE_FACTOR", "0.5");
        let err = Config::load().expect_err("below 1").to_string();
        assert!(err.contains("findings.spike_factor"), "{err}");
        jail.set_env("NETDIGEST_FINDINGS__SPIKE_FACTOR", "5");
        assert_eq!(
            Config::load()
                .map_err(|e| e.to_string())?
                .findings
                .dns_burst_answered_max,
            0.5
        );
        jail.set_env("NETDIGEST_FINDINGS__DNS_BURST_ANSWERED_MAX", "0.8");
        let f = Config::load().map_err(|e| e.to_string())?.findings;
        assert_eq!(f.dns_burst_answered_max, 0.8);
        jail.set_env("NETDIGEST_FINDINGS__DNS_BURST_ANSWERED_MAX", "1.5");
        let err = Config::load().expect_err("a share").to_string();
        assert!(err.contains("findings.dns_burst_answered_max"), "{err}");
        Ok(())
    });
}

#[test]
fn print_config_names_sources() {
    Jail::expect_with(|jail| {
        jail.create_file("nd.toml", "[report]\ntop_n = 5\n")?;
        jail.set_env("NETDIGEST_CONFIG", "nd.toml");
        jail.set_env("NETDIGEST_STATE__DIR", "/tmp/x");
        let lines = sourced_values(&Config::figment()).map_err(|e| e.to_string())?;
        let get = |k: &str| lines.iter().find(|l| l.key == k).cloned().expect(k);
        assert!(
            get("report.top_n").source.starts_with("file "),
            "{:?}",
            get("report.top_n")
        );
        assert_eq!(get("report.top_n").value, "5");
        assert_eq!(get("state.dir").source, "env NETDIGEST_STATE__DIR");
        assert_eq!(get("capture.start").source, "default");
        Ok(())
    });
}
