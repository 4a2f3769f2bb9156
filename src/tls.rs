//! In-process TLS (rustls) for deployments without a proxy. The certificate and key are
//! re-read when their modification time changes, so a renewed certificate is picked up
//! without a restart.

use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;

use crate::config::TlsConfig;

pub async fn load(cfg: &TlsConfig) -> Result<RustlsConfig, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    RustlsConfig::from_pem_file(&cfg.cert, &cfg.key)
        .await
        .map_err(|e| {
            format!(
                "cannot load {} / {}: {e}",
                cfg.cert.display(),
                cfg.key.display()
            )
        })
}

fn mtimes(cfg: &TlsConfig) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(&cfg.cert), m(&cfg.key))
}

/// Polls the files and reloads on change; a broken new pair keeps the old one serving.
pub fn watch(rustls: RustlsConfig, cfg: TlsConfig) {
    tokio::spawn(async move {
        let mut last = mtimes(&cfg);
        loop {
            tokio::time::sleep(Duration::from_secs(cfg.reload_interval.max(1))).await;
            let now = mtimes(&cfg);
            if now != last {
                match rustls.reload_from_pem_file(&cfg.cert, &cfg.key).await {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "TLS reload failed; keeping the old certificate")
                    }
                }
                last = now;
            }
        }
    });
}
