//! A client for the parts of Flink's REST API that `taskbench flink run`
//! uses: the cluster's version and configuration, jar upload and run, a
//! job's state, details, accumulators, exceptions and subtask metrics.
//! Every call has a timeout.

use std::time::Duration;

use serde_json::Value;

use super::FlinkError;

/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long any one call may take, end to end (a jar upload included).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest answer read (job details of a wide job are a few hundred KiB).
const MAX_ANSWER: u64 = 64 << 20;

/// A Flink cluster's REST endpoint.
#[derive(Clone, Debug)]
pub struct RestClient {
    base: String,
    agent: ureq::Agent,
}

/// Checks a `--cluster` address: `http://HOST:PORT`, nothing after the port.
pub fn parse_cluster_url(url: &str) -> Result<String, FlinkError> {
    let bad = |why: &str| {
        FlinkError::Usage(format!(
            "--cluster {url:?} is not a Flink REST address: {why} (write http://HOST:PORT, e.g. http://127.0.0.1:8081)"
        ))
    };
    let rest = match url.strip_prefix("http://") {
        Some(rest) => rest.trim_end_matches('/'),
        None if url.starts_with("https://") => {
            return Err(bad("https is not supported; taskbench talks plain http"))
        }
        None => return Err(bad("it does not start with http://")),
    };
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return Err(bad("no host, or more than a host before the port"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(format!("http://{host}:{port}")),
        _ => Err(bad(&format!("port {port:?} is not 1..65535"))),
    }
}

impl RestClient {
    /// A client for `base` (`http://HOST:PORT`).
    pub fn new(base: &str) -> Self {
        RestClient {
            base: base.trim_end_matches('/').to_string(),
            agent: ureq::AgentBuilder::new()
                .timeout_connect(CONNECT_TIMEOUT)
                .timeout(CALL_TIMEOUT)
                .build(),
        }
    }

    /// The address.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn answer(
        &self,
        what: &str,
        response: Result<ureq::Response, ureq::Error>,
    ) -> Result<Value, FlinkError> {
        let read = |r: ureq::Response| -> Result<String, std::io::Error> {
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut std::io::Read::take(r.into_reader(), MAX_ANSWER),
                &mut text,
            )?;
            Ok(text)
        };
        match response {
            Ok(r) => {
                let text = read(r).map_err(|e| {
                    FlinkError::Cluster(format!(
                        "{what} at {}: cannot read the answer: {e}",
                        self.base
                    ))
                })?;
                serde_json::from_str(&text).map_err(|e| {
                    FlinkError::Cluster(format!(
                        "{what} at {}: the answer is not JSON: {e}",
                        self.base
                    ))
                })
            }
            Err(ureq::Error::Status(code, r)) => {
                let text = read(r).unwrap_or_default();
                // Flink answers errors as {"errors": ["..."]}; keep the first line of each.
                let errors = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v.get("errors").cloned())
                    .and_then(|e| e.as_array().cloned())
                    .map(|e| {
                        e.iter()
                            .filter_map(|x| x.as_str())
                            .map(|s| s.lines().next().unwrap_or("").to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or(text);
                Err(FlinkError::Cluster(format!(
                    "{what} at {}: HTTP {code}: {errors}",
                    self.base
                )))
            }
            Err(e) => Err(FlinkError::Cluster(format!("{what} at {}: {e}", self.base))),
        }
    }

    /// GET `path` (from the root, e.g. `/config`).
    pub fn get(&self, path: &str) -> Result<Value, FlinkError> {
        let url = format!("{}{path}", self.base);
        self.answer(&format!("GET {path}"), self.agent.get(&url).call())
    }

    /// The cluster's Flink version (`/config`); the first call, so an
    /// address where no Flink answers is a usage error.
    pub fn flink_version(&self) -> Result<String, FlinkError> {
        let config = self.get("/config").map_err(|e| {
            FlinkError::Usage(format!("no Flink REST API answers at {}: {e}", self.base))
        })?;
        config
            .get("flink-version")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                FlinkError::Usage(format!(
                    "{} answered /config without a flink-version: is it a Flink cluster?",
                    self.base
                ))
            })
    }

    /// The JobManager's JVM (`/jobmanager/environment`), if the cluster tells.
    pub fn jvm_version(&self) -> Option<String> {
        let env = self.get("/jobmanager/environment").ok()?;
        env.pointer("/jvm/version")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The JobManager's configuration (`/jobmanager/config`), key → value.
    pub fn cluster_config(&self) -> Result<Vec<(String, String)>, FlinkError> {
        let entries = self.get("/jobmanager/config")?;
        Ok(entries
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| {
                        Some((
                            e.get("key")?.as_str()?.to_string(),
                            e.get("value")?.as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Uploads `jar` (`POST /jars/upload`); returns its id on the cluster.
    pub fn upload_jar(&self, jar: &std::path::Path) -> Result<String, FlinkError> {
        let bytes = std::fs::read(jar)
            .map_err(|e| FlinkError::Environment(format!("cannot read {}: {e}", jar.display())))?;
        let boundary = format!("taskbench-{:x}", std::process::id());
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"jarfile\"; filename=\"taskbench-job.jar\"\r\nContent-Type: application/x-java-archive\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let url = format!("{}/jars/upload", self.base);
        let answer = self.answer(
            "POST /jars/upload",
            self.agent
                .post(&url)
                .set(
                    "Content-Type",
                    &format!("multipart/form-data; boundary={boundary}"),
                )
                .send_bytes(&body),
        )?;
        answer
            .get("filename")
            .and_then(Value::as_str)
            .and_then(|f| f.rsplit('/').next())
            .map(str::to_string)
            .ok_or_else(|| {
                FlinkError::Cluster(format!(
                    "POST /jars/upload answered without a filename: {answer}"
                ))
            })
    }

    /// Runs `entry_class` of an uploaded jar with `args`
    /// (`POST /jars/:id/run`); returns the job id.
    pub fn run_jar(
        &self,
        jar_id: &str,
        entry_class: &str,
        args: &[String],
    ) -> Result<String, FlinkError> {
        let body = serde_json::json!({ "entryClass": entry_class, "programArgsList": args });
        let url = format!("{}/jars/{jar_id}/run", self.base);
        let answer = self.answer(
            "POST /jars/:id/run",
            self.agent
                .post(&url)
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
        )?;
        answer
            .get("jobid")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                FlinkError::Cluster(format!(
                    "POST /jars/:id/run answered without a jobid: {answer}"
                ))
            })
    }

    /// Removes an uploaded jar (best effort: the cluster keeps working without).
    pub fn delete_jar(&self, jar_id: &str) {
        let _ = self
            .agent
            .delete(&format!("{}/jars/{jar_id}", self.base))
            .call();
    }

    /// Cancels a job (best effort).
    pub fn cancel(&self, job: &str) {
        let _ = self
            .agent
            .request("PATCH", &format!("{}/jobs/{job}?mode=cancel", self.base))
            .call();
    }

    /// `GET /jobs/:id/vertices/:vid/subtasks/:i/metrics?get=...`, as name → value.
    pub fn subtask_metrics(
        &self,
        job: &str,
        vertex: &str,
        subtask: u32,
        names: &[&str],
    ) -> Result<Vec<(String, f64)>, FlinkError> {
        let path = format!(
            "/jobs/{job}/vertices/{vertex}/subtasks/{subtask}/metrics?get={}",
            names.join(",")
        );
        let answer = self.get(&path)?;
        Ok(answer
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| {
                        let value = m.get("value")?;
                        let number = value
                            .as_f64()
                            .or_else(|| value.as_str().and_then(|s| s.parse().ok()))?;
                        Some((m.get("id")?.as_str()?.to_string(), number))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_addresses_are_checked() {
        assert_eq!(
            parse_cluster_url("http://127.0.0.1:8081/").unwrap(),
            "http://127.0.0.1:8081"
        );
        assert_eq!(
            parse_cluster_url("http://flink-jm:8081").unwrap(),
            "http://flink-jm:8081"
        );
        for (bad, why) in [
            ("127.0.0.1:8081", "does not start with http://"),
            ("https://h:8081", "https is not supported"),
            ("http://h", "no port"),
            ("http://h:0", "is not 1..65535"),
            ("http://h:99999", "is not 1..65535"),
            ("http://:8081", "no host"),
            ("http://h/x:8081", "no host"),
        ] {
            let e = parse_cluster_url(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("--cluster"), "{bad}: {e}");
        }
    }
}
