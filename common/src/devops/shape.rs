//! Answers as Eclipse Ditto's devops JSON: `{service: {instance: answer}}` for the whole
//! cluster, `{instance: answer}` for one service, the answer alone for one instance. An
//! answer is `{type, status, serviceName, instance, …}` with `loggerConfigs`, `result` or
//! `config`, or a piggyback response's own fields (`statusInfo`, `config`, `namespace`, …);
//! a failed one has `error` and `message` instead. A piggyback with `headers.aggregate`
//! false answers with one response: the first that failed, else the first.

use super::{Command, Scope};
use serde_json::{json, Map, Value};
use tributary_proto::v1::InstanceAnswer;

fn error_code(status: u32) -> &'static str {
    match status {
        400 => "devops:bad.request",
        401 => "devops:unauthenticated",
        403 => "devops:forbidden",
        404 => "devops:not.found",
        409 => "devops:precondition.failed",
        504 => "devops:instance.timeout",
        _ => "devops:instance.unavailable",
    }
}

/// One instance's answer as Ditto writes it.
pub fn answer(cmd: &Command, a: &InstanceAnswer) -> Value {
    let instance: Value = a
        .instance
        .parse::<u64>()
        .map_or_else(|_| a.instance.clone().into(), Value::from);
    let mut o = Map::new();
    o.insert("type".into(), cmd.response_type().into());
    o.insert("status".into(), a.status.into());
    o.insert("serviceName".into(), a.service.clone().into());
    o.insert("instance".into(), instance);
    if a.status != 200 {
        o.insert("error".into(), error_code(a.status).into());
        o.insert("message".into(), a.error.clone().into());
        return Value::Object(o);
    }
    match cmd {
        Command::RetrieveLoggerConfig => {
            let configs: Vec<Value> = a
                .logger_configs
                .iter()
                .map(|c| json!({"level": c.level, "logger": c.logger}))
                .collect();
            o.insert("loggerConfigs".into(), configs.into());
        }
        Command::ChangeLogLevel { .. } => {
            o.insert("result".into(), a.result.into());
        }
        Command::RetrieveConfig { .. } => {
            let config = serde_json::from_str(&a.config_json).unwrap_or(Value::Null);
            o.insert("config".into(), config);
        }
        Command::Piggyback(_) => {
            if let Ok(Value::Object(fields)) = serde_json::from_str(&a.response_json) {
                for (k, v) in fields {
                    o.entry(k).or_insert(v);
                }
            }
        }
    }
    Value::Object(o)
}

/// The whole response and its HTTP status: 200 when aggregated (each answer carries its
/// own), the answer's own status for one instance.
pub fn response(cmd: &Command, scope: &Scope, answers: &[InstanceAnswer]) -> (u16, Value) {
    let single = match cmd {
        Command::Piggyback(p) => !p.aggregate,
        _ => false,
    };
    if single {
        if let Some(a) = answers.iter().find(|a| a.status != 200).or(answers.first()) {
            let status = u16::try_from(a.status).unwrap_or(500);
            return (status, answer(cmd, a));
        }
    }
    if scope.instance.is_some() {
        if let Some(a) = answers.first() {
            let status = u16::try_from(a.status).unwrap_or(500);
            return (status, answer(cmd, a));
        }
    }
    let mut by_service: Map<String, Value> = Map::new();
    for a in answers {
        let entry = by_service
            .entry(a.service.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(a.instance.clone(), answer(cmd, a));
        }
    }
    match scope.service {
        Some(s) => {
            let one = by_service.remove(s.name()).unwrap_or_else(|| json!({}));
            (200, one)
        }
        None => (200, Value::Object(by_service)),
    }
}

/// A refused request as Ditto answers one.
pub fn error(status: u16, message: &str) -> Value {
    json!({"status": status, "error": error_code(status.into()), "message": message})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devops::Service;
    use tributary_proto::v1::LoggerConfig;

    fn ok(service: &str, instance: &str) -> InstanceAnswer {
        InstanceAnswer {
            service: service.into(),
            instance: instance.into(),
            status: 200,
            logger_configs: vec![LoggerConfig {
                logger: "ROOT".into(),
                level: "info".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn answers_nest_as_ditto_nests_them() {
        let cmd = Command::RetrieveLoggerConfig;
        let down = InstanceAnswer {
            service: "data-node".into(),
            instance: "2".into(),
            status: 503,
            error: "data-node 2: connection refused".into(),
            ..Default::default()
        };
        let answers = [ok("control-plane", "1"), ok("data-node", "1"), down];
        let (status, all) = response(&cmd, &Scope::default(), &answers);
        assert_eq!(status, 200);
        let one = &all["control-plane"]["1"];
        assert_eq!(one["type"], "devops.responses:retrieveLoggerConfig");
        assert_eq!(one["serviceName"], "control-plane");
        assert_eq!(one["instance"], 1);
        assert_eq!(
            one["loggerConfigs"][0],
            json!({"level": "info", "logger": "ROOT"})
        );
        assert_eq!(all["data-node"]["2"]["status"], 503);
        assert!(all["data-node"]["2"]["message"]
            .as_str()
            .unwrap()
            .contains("refused"));
        let scope = Scope {
            service: Some(Service::DataNode),
            ..Default::default()
        };
        let (_, dn) = response(&cmd, &scope, &answers);
        assert_eq!(dn["1"]["status"], 200);
        let scope = Scope {
            service: Some(Service::DataNode),
            instance: Some("2".into()),
            local: false,
        };
        let (status, single) = response(&cmd, &scope, &answers[2..]);
        assert_eq!(
            (status, &single["error"]),
            (503, &json!("devops:instance.unavailable"))
        );
    }
}
