//! `rdp-doctor-agent service`: the agent under the Windows service manager, as the install
//! script registers it. Elsewhere the agent runs in the foreground (`run`), e.g. from systemd.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;

/// The service name the install script registers.
pub const SERVICE_NAME: &str = "RdpDoctorAgent";

/// Hands the process to the service manager, which calls back to serve until it says stop.
#[cfg(windows)]
pub async fn run(config: PathBuf, listen: SocketAddr, advertise_url: Option<String>) -> Result<()> {
    imp::SETTINGS
        .set(imp::Settings {
            config,
            listen,
            advertise_url,
        })
        .map_err(|_| anyhow::anyhow!("the service was started twice in one process"))?;
    tokio::task::spawn_blocking(imp::start_dispatcher)
        .await?
        .map_err(|e| anyhow::anyhow!("not started by the Windows service manager ({e}); use `rdp-doctor-agent run` in a console"))
}

/// Outside Windows there is no service manager to hand over to.
#[cfg(not(windows))]
pub async fn run(
    _config: PathBuf,
    _listen: SocketAddr,
    _advertise_url: Option<String>,
) -> Result<()> {
    anyhow::bail!("`service` is for the Windows service manager; on this system run `rdp-doctor-agent run` (e.g. from a systemd unit)")
}

#[cfg(windows)]
#[allow(unsafe_code)] // define_windows_service! expands to the extern entry point the SCM calls.
mod imp {
    use std::ffi::OsString;
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::sync::{Mutex, OnceLock};
    use std::time::Duration;

    use windows_service::service::{
        ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus,
        ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult};

    use super::SERVICE_NAME;

    pub struct Settings {
        pub config: PathBuf,
        pub listen: SocketAddr,
        pub advertise_url: Option<String>,
    }

    /// What `run` was given, for the service's main, which the SCM calls without arguments of ours.
    pub static SETTINGS: OnceLock<Settings> = OnceLock::new();

    windows_service::define_windows_service!(ffi_service_main, service_main);

    /// Blocks while the service manager runs the service.
    pub fn start_dispatcher() -> windows_service::Result<()> {
        windows_service::service_dispatcher::start(SERVICE_NAME, ffi_service_main)
    }

    fn service_main(_arguments: Vec<OsString>) {
        if let Err(e) = run_service() {
            tracing::error!(error = %e, "the agent service failed");
        }
    }

    fn status(state: ServiceState, exit: u32) -> ServiceStatus {
        ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: if state == ServiceState::Running {
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN
            } else {
                ServiceControlAccept::empty()
            },
            exit_code: ServiceExitCode::Win32(exit),
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        }
    }

    fn run_service() -> anyhow::Result<()> {
        let settings = SETTINGS
            .get()
            .ok_or_else(|| anyhow::anyhow!("no service settings"))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stop = Mutex::new(Some(stop));
        let handle =
            service_control_handler::register(SERVICE_NAME, move |control| match control {
                ServiceControl::Stop | ServiceControl::Shutdown => {
                    if let Some(stop) = stop.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        let _ = stop.send(());
                    }
                    ServiceControlHandlerResult::NoError
                }
                ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
                _ => ServiceControlHandlerResult::NotImplemented,
            })?;
        handle.set_service_status(status(ServiceState::Running, 0))?;
        let runtime = tokio::runtime::Runtime::new()?;
        let served = runtime.block_on(crate::agent::cli::serve(
            settings.config.clone(),
            settings.listen,
            settings.advertise_url.clone(),
            async {
                let _ = stopped.await;
            },
        ));
        let exit = if served.is_ok() { 0 } else { 1 };
        handle.set_service_status(status(ServiceState::Stopped, exit))?;
        served
    }
}
