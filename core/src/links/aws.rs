//! Operator links on AWS: a CloudWatch Logs Insights query over the deployment's log groups
//! (`/{NAME_PREFIX}/{service}`) filtered by job id, and Cost Explorer filtered by the
//! deployment's cost-allocation tag (`app = NAME_PREFIX`).
//!
//! The console's URL formats are not an API: they are built here as the console builds them
//! today (Logs Insights: a JSURL-like object, `escape()`d, then URI-encoded with `%` written
//! as `$`), and checked by tests against that shape.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::OperatorLinksProvider;
use crate::aws::{ResourceNames, COST_TAG_KEY, SERVICES};

/// What JavaScript's `encodeURIComponent` leaves alone: `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// What JavaScript's `escape` leaves alone: `A-Z a-z 0-9 @ * _ + - . /`.
const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'@')
    .remove(b'*')
    .remove(b'_')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'/');

/// How far back the logs link looks.
const LOGS_WINDOW_SECS: u64 = 7 * 24 * 3600;

/// Links into the AWS console for one deployment.
#[derive(Debug, Clone)]
pub struct AwsLinks {
    region: String,
    log_groups: Vec<String>,
    cost_tag_value: String,
}

impl AwsLinks {
    /// Links for the deployment named by `names` in `region`.
    pub fn new(region: impl Into<String>, names: &ResourceNames) -> Self {
        Self {
            region: region.into(),
            log_groups: SERVICES.iter().map(|s| names.log_group(s)).collect(),
            cost_tag_value: names.prefix().to_owned(),
        }
    }
}

/// A primitive string in the console's object notation: URI-encoded, `%` as `*`, after `'`.
fn jsurl_string(s: &str) -> String {
    format!(
        "'{}",
        utf8_percent_encode(s, URI_COMPONENT)
            .to_string()
            .replace('%', "*")
    )
}

impl OperatorLinksProvider for AwsLinks {
    fn get_job_logs_url(&self, job_id: &str) -> Option<String> {
        // Job ids are UUIDs; anything that could break out of the query's string is dropped.
        let id: String = job_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        if id.is_empty() {
            return None;
        }
        let query = format!(
            "fields @timestamp, @logStream, @message\n| filter @message like \"{id}\"\n| sort @timestamp asc\n| limit 10000"
        );
        let sources: String = self
            .log_groups
            .iter()
            .map(|g| format!("~{}", jsurl_string(g)))
            .collect();
        let detail = format!(
            "~(end~0~start~-{LOGS_WINDOW_SECS}~timeType~'RELATIVE~unit~'seconds~editorString~{}~source~({sources}))",
            jsurl_string(&query)
        );
        let fragment = format!("?queryDetail={}", utf8_percent_encode(&detail, ESCAPE));
        let fragment = utf8_percent_encode(&fragment, URI_COMPONENT)
            .to_string()
            .replace('%', "$");
        let region = &self.region;
        Some(format!(
            "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:logs-insights{fragment}"
        ))
    }

    fn get_cost_dashboard_url(&self) -> Option<String> {
        let filter = serde_json::json!([{
            "dimension": {"id": "TagKey", "displayValue": "Tag"},
            "operator": "INCLUDES",
            "values": [{"value": self.cost_tag_value, "displayValue": self.cost_tag_value}],
            "growableValue": {"value": COST_TAG_KEY, "displayValue": COST_TAG_KEY},
        }]);
        let groups = serde_json::json!(["Service"]);
        let enc = |v: &serde_json::Value| {
            utf8_percent_encode(&v.to_string(), NON_ALPHANUMERIC).to_string()
        };
        Some(format!(
            "https://us-east-1.console.aws.amazon.com/costmanagement/home#/cost-explorer?chartStyle=STACK&costAggregate=unBlendedCost&granularity=Daily&historicalRelativeRange=LAST_30_DAYS&groupBy={}&filter={}",
            enc(&groups),
            enc(&filter)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> AwsLinks {
        AwsLinks::new("eu-west-1", &ResourceNames::new("px", "px-bucket").unwrap())
    }

    /// Undoes the console encoding: `$` back to `%`, URI-decode, `escape` undone, then the
    /// object notation's `*` back to `%` and decoded again.
    fn decode_detail(url: &str) -> String {
        let frag = url.split_once("#logsV2:logs-insights").unwrap().1;
        let once = percent_encoding::percent_decode_str(&frag.replace('$', "%"))
            .decode_utf8()
            .unwrap()
            .into_owned();
        let detail = once.strip_prefix("?queryDetail=").unwrap();
        let unescaped = percent_encoding::percent_decode_str(detail)
            .decode_utf8()
            .unwrap()
            .into_owned();
        percent_encoding::percent_decode_str(&unescaped.replace('*', "%"))
            .decode_utf8()
            .unwrap()
            .into_owned()
    }

    #[test]
    fn logs_link_queries_every_service_log_group_for_the_job() {
        let job = "0b7e2a4c-1f2d-4c3b-9a8e-123456789abc";
        let url = links().get_job_logs_url(job).unwrap();
        assert!(url.starts_with(
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:logs-insights$3FqueryDetail$3D$257E$2528end$257E0$257Estart$257E-604800"
        ), "{url}");
        assert!(url.contains(job));
        let detail = decode_detail(&url);
        assert!(
            detail.contains(&format!("filter @message like \"{job}\"")),
            "{detail}"
        );
        for g in ["/px/web-ui", "/px/media-worker", "/px/video-worker"] {
            assert!(
                detail.contains(&format!("~'{g}")),
                "{g} missing in {detail}"
            );
        }
    }

    #[test]
    fn logs_link_cannot_be_broken_by_a_hostile_id() {
        let url = links().get_job_logs_url("a\"|b").unwrap();
        assert!(decode_detail(&url).contains("like \"ab\""));
        assert_eq!(links().get_job_logs_url("\"\""), None);
    }

    #[test]
    fn cost_link_filters_by_the_cost_tag() {
        let url = links().get_cost_dashboard_url().unwrap();
        let decoded = percent_encoding::percent_decode_str(&url)
            .decode_utf8()
            .unwrap();
        assert!(
            decoded.contains(r#""growableValue":{"displayValue":"app","value":"app"}"#)
                || decoded.contains(r#""growableValue":{"value":"app","displayValue":"app"}"#),
            "{decoded}"
        );
        assert!(decoded.contains(r#""value":"px""#), "{decoded}");
    }
}
