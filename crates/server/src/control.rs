//! The control runtime: one thread beside the workers for what is not a
//! request — signals, the mapping file watch, the readiness probe, the
//! Firehose flush — and, with the `aws` feature, the AWS SDK, whose
//! connections all live here whichever worker asked (the workers' runtimes
//! serve requests only).

use anyhow::Context;
use std::future::Future;

pub(crate) struct Control {
    runtime: tokio::runtime::Runtime,
    #[cfg(feature = "aws")]
    sdk: std::sync::OnceLock<pullgate_aws::SdkConfig>,
}

impl Control {
    pub(crate) fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pullgate-control")
            .enable_all()
            .build()
            .context("cannot start the control runtime")?;
        Ok(Control {
            runtime,
            #[cfg(feature = "aws")]
            sdk: std::sync::OnceLock::new(),
        })
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        self.runtime.handle()
    }

    /// Runs `future` to its end from the main thread.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The SDK configuration from the environment (region, credentials,
    /// `AWS_ENDPOINT_URL`), loaded once for every AWS adapter.
    #[cfg(feature = "aws")]
    pub(crate) fn sdk_config(&self) -> &pullgate_aws::SdkConfig {
        self.sdk
            .get_or_init(|| self.runtime.block_on(pullgate_aws::sdk_config()))
    }
}
