//! `smdpp outbox list`: the queued outbound calls of [`smdpp_service::outbox`] from the command line.

use crate::cli::{DataArgs, data_location, load_file};
use smdpp_service::assembly::open_store;
pub use smdpp_service::outbox::format_rows;

/// `smdpp outbox ...`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum OutboxCommand {
    /// Queued outbound calls (HandleDownloadProgressInfo, ES12), oldest first.
    List {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// Only rows in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// At most this many rows.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// `--state` of `smdpp outbox list`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateArg {
    /// Waiting for an attempt.
    Pending,
    /// Acknowledged by the receiver.
    Delivered,
    /// Given up.
    Failed,
}

impl From<StateArg> for smdpp_store::OutboxState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Pending => smdpp_store::OutboxState::Pending,
            StateArg::Delivered => smdpp_store::OutboxState::Delivered,
            StateArg::Failed => smdpp_store::OutboxState::Failed,
        }
    }
}

/// Runs an `smdpp outbox` command.
pub async fn outbox_command(cmd: OutboxCommand) -> anyhow::Result<()> {
    match cmd {
        OutboxCommand::List { data, state, limit } => {
            let f = load_file(&data)?;
            let (dir, url) = data_location(&data, &f)?;
            let (store, _) = open_store(&dir, &url).await?;
            let rows = store.list_outbox(state.map(Into::into), limit).await?;
            print!("{}", format_rows(&rows));
            store.close().await;
        }
    }
    Ok(())
}

/// [`outbox_command`] on a current-thread tokio runtime.
pub fn outbox_blocking(cmd: OutboxCommand) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(outbox_command(cmd))
}
