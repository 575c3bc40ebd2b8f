//! Links for operators: a job's logs and the cost dashboard. Locally there are none; on AWS
//! they point at CloudWatch Logs Insights and Cost Explorer.

#[cfg(feature = "aws")]
pub mod aws;

/// Gives operator links, or `None` where the deployment has nothing to link to.
///
/// # Contract
/// - Pure functions of the configuration and the job id: no I/O, never fails.
/// - `None` means "hide the link", not an error.
pub trait OperatorLinksProvider: Send + Sync + std::fmt::Debug + 'static {
    /// A link to the logs of every process line that carries `job_id`.
    fn get_job_logs_url(&self, job_id: &str) -> Option<String>;
    /// A link to the deployment's cost dashboard.
    fn get_cost_dashboard_url(&self) -> Option<String>;
}

/// The local deployment's links: none.
#[derive(Debug, Default, Clone)]
pub struct NoLinks;

impl OperatorLinksProvider for NoLinks {
    fn get_job_logs_url(&self, _job_id: &str) -> Option<String> {
        None
    }
    fn get_cost_dashboard_url(&self) -> Option<String> {
        None
    }
}
