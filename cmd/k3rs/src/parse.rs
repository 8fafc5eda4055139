//! Typed parsers for flag values, used by clap (`value_parser = parse::cidr`). Each error
//! is one phrase saying what was expected; `main` prints it on one line with the flag's
//! name and value, e.g. `k3rs: invalid --cluster-cidr "10.42.0.0/33": not a CIDR ...`.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use ipnet::IpNet;
use k3rs_core::join::FlannelBackend;
use k8s_openapi::api::core::v1::Taint;

type Parsed<T> = Result<T, String>;

pub fn ip(value: &str) -> Parsed<IpAddr> {
    value
        .trim()
        .parse()
        .map_err(|_| "not an IP address".to_string())
}

/// A network address with its prefix length, without host bits.
pub fn cidr(value: &str) -> Parsed<IpNet> {
    let net: IpNet = value
        .trim()
        .parse()
        .map_err(|_| "not a CIDR such as 10.42.0.0/16".to_string())?;
    if net.network() != net.addr() {
        return Err(format!("host bits are set; did you mean {}?", net.trunc()));
    }
    Ok(net)
}

/// A TCP/UDP port, 0 allowed (the kernel picks one).
pub fn port(value: &str) -> Parsed<u16> {
    value
        .trim()
        .parse()
        .map_err(|_| "expected a port number 0-65535".to_string())
}

/// A port to connect to or listen on by number: 1-65535.
pub fn nonzero_port(value: &str) -> Parsed<u16> {
    port(value)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| "expected a port number 1-65535".to_string())
}

/// `FIRST-LAST`, e.g. `30000-32767`.
pub fn port_range(value: &str) -> Parsed<RangeInclusive<u16>> {
    let bad = || "expected FIRST-LAST, e.g. 30000-32767".to_string();
    let (a, b) = value.split_once('-').ok_or_else(bad)?;
    let first: u16 = a.trim().parse().map_err(|_| bad())?;
    let last: u16 = b.trim().parse().map_err(|_| bad())?;
    if first == 0 || first > last {
        return Err(bad());
    }
    Ok(first..=last)
}

/// A file mode in octal, e.g. `644` or `0600`.
pub fn file_mode(value: &str) -> Parsed<u32> {
    u32::from_str_radix(value.trim(), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| "expected an octal file mode such as 0644".to_string())
}

/// A DNS domain such as `cluster.local`.
pub fn domain(value: &str) -> Parsed<String> {
    let ok = !value.is_empty()
        && value.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    match ok {
        true => Ok(value.to_string()),
        false => Err("not a DNS domain".to_string()),
    }
}

/// A node name: a lowercase DNS subdomain (it becomes a Node name and a certificate CN).
pub fn node_name(value: &str) -> Parsed<String> {
    match k3rs_core::validation::is_dns1123_subdomain(value) {
        true => Ok(value.to_string()),
        false => Err("must be a lowercase DNS subdomain".to_string()),
    }
}

/// `https://HOST[:PORT]` of a server to join.
pub fn server_url(value: &str) -> Parsed<k3rs_agent::join::ServerUrl> {
    k3rs_agent::join::ServerUrl::parse(value)
}

pub fn flannel_backend(value: &str) -> Parsed<FlannelBackend> {
    value
        .parse()
        .map_err(|_| "expected vxlan, host-gw or none".to_string())
}

/// A Go-style duration (`40s`, `5m`, `1h30m`); a bare number is seconds.
pub fn duration(value: &str) -> Parsed<Duration> {
    let value = value.trim();
    let with_unit = match value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        true => format!("{value}s"),
        false => value.to_string(),
    };
    k3rs_core::duration::parse(&with_unit)
        .ok_or_else(|| "expected a duration such as 40s, 5m or 1h30m".to_string())
}

/// `KEY=VALUE` with a valid label key and value.
pub fn label(text: &str) -> Parsed<(String, String)> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| "expected KEY=VALUE".to_string())?;
    if !k3rs_core::validation::is_qualified_name(key) {
        return Err(format!("{key:?} is not a valid label key"));
    }
    if !k3rs_core::validation::is_label_value(value) {
        return Err(format!("{value:?} is not a valid label value"));
    }
    Ok((key.to_string(), value.to_string()))
}

/// `KEY[=VALUE]:EFFECT`.
pub fn taint(text: &str) -> Parsed<Taint> {
    let (key_value, effect) = text
        .rsplit_once(':')
        .ok_or_else(|| "expected KEY[=VALUE]:EFFECT".to_string())?;
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        return Err("effect must be NoSchedule, PreferNoSchedule or NoExecute".into());
    }
    let (key, value) = match key_value.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (key_value, None),
    };
    if !k3rs_core::validation::is_qualified_name(key) {
        return Err("the key is not a valid label key".into());
    }
    if value.is_some_and(|v| !k3rs_core::validation::is_label_value(v)) {
        return Err("the value is not a valid label value".into());
    }
    Ok(Taint {
        key: key.to_string(),
        value: value.map(str::to_string),
        effect: effect.to_string(),
        time_added: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_ports_and_modes() {
        assert_eq!(cidr("10.42.0.0/16").unwrap().to_string(), "10.42.0.0/16");
        assert!(cidr("10.42.0.1/16").unwrap_err().contains("10.42.0.0/16"));
        assert!(cidr("10.42.0.0/33").is_err());
        assert_eq!(port_range("30000-32767").unwrap(), 30000..=32767);
        assert!(port_range("5-1").is_err());
        assert!(nonzero_port("0").is_err());
        assert_eq!(file_mode("0644").unwrap(), 0o644);
        assert!(file_mode("999").is_err());
        assert!(domain("bad_domain!").is_err());
        assert_eq!(duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("5m").unwrap(), Duration::from_secs(300));
        assert!(duration("1x").is_err());
    }

    #[test]
    fn labels_and_taints() {
        assert_eq!(
            label("example.com/tier=edge").unwrap(),
            ("example.com/tier".into(), "edge".into())
        );
        assert!(label("novalue").is_err());
        assert!(label("a=b c").is_err());
        let t = taint("dedicated=gpu:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value.as_deref(), t.effect.as_str()),
            ("dedicated", Some("gpu"), "NoSchedule")
        );
        assert_eq!(taint("edge:NoExecute").unwrap().value, None);
        assert!(taint("x=y:Sometimes").unwrap_err().contains("effect"));
    }
}
