//! The `[gateway]` settings (docs/gateway.md): where the agent gateway
//! listens, who may use it, its limits, and the services exposed by config.

use std::net::SocketAddr;

use toml::Value;

use super::source::Source;
use super::values::{Given, Raw, Rejection};
use crate::gateway::{Allow, BackendTarget, ExposeSettings, GatewaySocket};

pub(super) fn socket(raw: &Raw) -> Result<GatewaySocket, String> {
    match raw {
        Raw::Text(text) if text.is_empty() => Ok(GatewaySocket::Default),
        Raw::Text(text) if text == "off" => Ok(GatewaySocket::Off),
        Raw::Text(text) => Ok(GatewaySocket::At(text.into())),
        _ => Err("expected a path, \"\" (the default) or \"off\"".into()),
    }
}

pub(super) fn show_socket(socket: &GatewaySocket) -> Value {
    Value::String(match socket {
        GatewaySocket::Default => String::new(),
        GatewaySocket::Off => "off".into(),
        GatewaySocket::At(path) => path.display().to_string(),
    })
}

pub(super) fn loopback_listen(raw: &Raw) -> Result<Option<SocketAddr>, String> {
    match raw {
        Raw::Text(text) if text == "off" => Ok(None),
        Raw::Text(text) => match text.parse::<SocketAddr>() {
            Ok(addr) if addr.ip().is_loopback() => Ok(Some(addr)),
            Ok(_) => Err(format!(
                "expected a loopback address, got {text:?}: the gateway has no authentication beyond the socket's permissions"
            )),
            Err(_) => Err(format!(
                "expected \"off\" or a loopback host:port like \"127.0.0.1:7734\", got {text:?}"
            )),
        },
        _ => Err("expected \"off\" or a loopback host:port".into()),
    }
}

/// `[[gateway.expose]]` tables, each checked.
pub(super) fn expose_list(given: &Given) -> Result<Vec<ExposeSettings>, Rejection> {
    let reject = |from: &Source, problem: String| Rejection {
        from: from.clone(),
        problem,
    };
    let Raw::List(items) = &given.raw else {
        return Err(reject(
            &given.from,
            "expected [[gateway.expose]] tables with service, target and allow (set in the config file)".into(),
        ));
    };
    items
        .iter()
        .map(|item| expose_entry(item).map_err(|problem| reject(&item.from, problem)))
        .collect()
}

fn expose_entry(item: &Given) -> Result<ExposeSettings, String> {
    let Raw::Table(fields) = &item.raw else {
        return Err("expected a table with service, target and allow".into());
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, given)| &given.raw)
    };
    if let Some((unknown, _)) = fields
        .iter()
        .find(|(key, _)| !["service", "target", "allow"].contains(&key.as_str()))
    {
        return Err(format!(
            "unknown field {unknown:?}: expected service, target and allow"
        ));
    }
    let text = |name: &str| match field(name) {
        Some(Raw::Text(text)) if !text.is_empty() => Ok(text.clone()),
        _ => Err(format!("{name} must be given, as a non-empty string")),
    };
    let service = text("service")?;
    let target = text("target")?;
    BackendTarget::parse(&target)?;
    let allow = match field("allow") {
        Some(Raw::List(entries)) => entries
            .iter()
            .map(|entry| match &entry.raw {
                Raw::Text(text) => Ok(text.clone()),
                _ => Err("allow entries must be strings".to_owned()),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err("allow must be given: a list of node ids, or [\"*\"] for any node".into()),
    };
    Allow::parse(&allow)?;
    Ok(ExposeSettings {
        service,
        target,
        allow,
    })
}

pub(super) fn show_expose(entries: &[ExposeSettings]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|entry| {
                let mut table = toml::map::Map::new();
                table.insert("service".into(), Value::String(entry.service.clone()));
                table.insert("target".into(), Value::String(entry.target.clone()));
                let allow = entry.allow.iter().cloned().map(Value::String).collect();
                table.insert("allow".into(), Value::Array(allow));
                Value::Table(table)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, Origin, Overrides, load};

    fn load_text(text: &str) -> Result<crate::config::Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peerd.toml");
        std::fs::write(&path, text).unwrap();
        load(&Overrides {
            config_path: Some((
                path,
                Origin::Flag {
                    flag: "--config".into(),
                },
            )),
            ..Overrides::default()
        })
    }

    #[test]
    fn expose_tables_are_read_and_each_field_checked() {
        let id = peerd::identity::NodeId::from_bytes([9; 32]);
        let settings = load_text(&format!(
            "[[gateway.expose]]\nservice = \"pkg.Echo\"\ntarget = \"unix:/run/echo.sock\"\nallow = [\"{id}\"]\n\
             [[gateway.expose]]\nservice = \"pkg.Open\"\ntarget = \"127.0.0.1:50051\"\nallow = [\"*\"]\n"
        ))
        .unwrap();
        let expose = &settings.gateway.expose;
        assert_eq!(expose.len(), 2);
        assert_eq!(expose[0].service, "pkg.Echo");
        assert_eq!(expose[0].allow, vec![id.to_string()]);
        assert_eq!(expose[1].target, "127.0.0.1:50051");
        let no_allow = load_text("[[gateway.expose]]\nservice = \"a\"\ntarget = \"unix:/a\"\n");
        assert!(
            no_allow
                .unwrap_err()
                .to_string()
                .contains("allow must be given")
        );
        let remote = load_text(
            "[[gateway.expose]]\nservice = \"a\"\ntarget = \"192.0.2.1:1\"\nallow = [\"*\"]\n",
        );
        assert!(remote.unwrap_err().to_string().contains("loopback"));
        let typo = load_text(
            "[[gateway.expose]]\nservice = \"a\"\ntarget = \"unix:/a\"\nallow = [\"*\"]\nallwo = 1\n",
        );
        assert!(typo.unwrap_err().to_string().contains("allwo"));
    }

    #[test]
    fn the_tcp_listener_binds_loopback_only_and_round_trips() {
        let settings =
            load_text("[gateway]\nlisten = \"127.0.0.1:7734\"\nsocket = \"off\"\n").unwrap();
        assert_eq!(
            settings.gateway.listen,
            Some("127.0.0.1:7734".parse().unwrap())
        );
        assert_eq!(settings.gateway.socket, GatewaySocket::Off);
        let public = load_text("[gateway]\nlisten = \"0.0.0.0:7734\"\n").unwrap_err();
        assert!(public.to_string().contains("loopback"), "{public}");
        let printed = settings.to_toml();
        assert_eq!(load_text(&printed).unwrap(), settings, "{printed}");
    }
}
