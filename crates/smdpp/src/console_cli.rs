//! `smdpp console users add|list|remove`: the console's users.
//!
//! The password is read from a file (`--password-file`, first line) or from the environment
//! variable `SMDPP_CONSOLE_PASSWORD`, never from a flag value (flags show in `ps`). Only its
//! argon2id hash is stored.

use std::path::PathBuf;

use crate::cli::DataArgs;
use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use smdpp_store::{ConsoleUser, StoreError, now_ms};
use zeroize::Zeroizing;

use smdpp_console::auth::{Role, hash_password};

/// `smdpp console ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum ConsoleCommand {
    /// Console users.
    Users {
        /// What to do.
        #[command(subcommand)]
        command: UsersCommand,
    },
}

/// `smdpp console users ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum UsersCommand {
    /// Add a user.
    Add(AddArgs),
    /// List the users (name, role, operator).
    List {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove a user and end their sessions.
    Remove {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// Log-in name.
        #[arg(long)]
        username: String,
    },
    /// Set a new password (ends the user's sessions).
    Passwd {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// Log-in name.
        #[arg(long)]
        username: String,
        /// File whose first line is the password (else SMDPP_CONSOLE_PASSWORD).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

/// `smdpp console users add`.
#[derive(Args, Debug, Clone)]
pub struct AddArgs {
    /// Data location and configuration file.
    #[command(flatten)]
    pub data: DataArgs,
    /// Log-in name (1-64 characters: letters, digits, `.`, `_`, `-`, `@`).
    #[arg(long)]
    pub username: String,
    /// `admin` (all operators, all actions), `operator` (one operator's orders) or `viewer`
    /// (read only).
    #[arg(long)]
    pub role: String,
    /// The operator the user works for (required for `operator`; limits a `viewer`).
    #[arg(long)]
    pub operator: Option<String>,
    /// File whose first line is the password (else SMDPP_CONSOLE_PASSWORD).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 10;

fn read_password(file: Option<&PathBuf>) -> Result<Zeroizing<String>> {
    let text = match file {
        Some(p) => Zeroizing::new(
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None => Zeroizing::new(std::env::var("SMDPP_CONSOLE_PASSWORD").map_err(|_| {
            anyhow!("give the password with --password-file FILE or SMDPP_CONSOLE_PASSWORD")
        })?),
    };
    let line = Zeroizing::new(text.lines().next().unwrap_or("").to_owned());
    if line.chars().count() < MIN_PASSWORD {
        bail!("the password must have at least {MIN_PASSWORD} characters");
    }
    Ok(line)
}

fn check_username(u: &str) -> Result<()> {
    let ok = (1..=64).contains(&u.len())
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if !ok {
        bail!("username must be 1-64 characters of letters, digits, '.', '_', '-', '@'");
    }
    Ok(())
}

/// Appends the audit record of a `smdpp console users` command.
async fn record(
    store: &smdpp_store::Store,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) -> Result<()> {
    crate::audit_cli::record(store, action, subject, details).await
}

/// Runs a `smdpp console` command.
pub async fn run(cmd: ConsoleCommand) -> Result<()> {
    let ConsoleCommand::Users { command } = cmd;
    match command {
        UsersCommand::Add(a) => {
            check_username(&a.username)?;
            let role = Role::parse(&a.role).ok_or_else(|| {
                anyhow!("unknown role {:?}; one of: admin, operator, viewer", a.role)
            })?;
            if role == Role::Operator && a.operator.is_none() {
                bail!("role operator needs --operator");
            }
            if role == Role::Admin && a.operator.is_some() {
                bail!("role admin works for every operator; leave out --operator");
            }
            let password = read_password(a.password_file.as_ref())?;
            let store = crate::cli::open_data_store(&a.data).await?;
            if let Some(op) = &a.operator
                && store.get_operator(op).await?.is_none()
            {
                store.close().await;
                bail!("unknown operator {op}: register it first with `smdpp operators add`");
            }
            let user = ConsoleUser {
                username: a.username.clone(),
                password_hash: hash_password(&password)?,
                role: role.as_str().to_owned(),
                operator_id: a.operator.clone(),
                created_at: now_ms(),
            };
            let r = store.insert_console_user(&user).await;
            let recorded = match &r {
                Ok(()) => {
                    let details = serde_json::json!({
                        "role": role.as_str(),
                        "operator": a.operator,
                    });
                    record(&store, "console.user.add", &a.username, details).await
                }
                Err(_) => Ok(()),
            };
            store.close().await;
            recorded?;
            match r {
                Ok(()) => println!("added console user {} ({})", a.username, role.as_str()),
                Err(StoreError::Duplicate { .. }) => {
                    bail!("console user {} already exists", a.username)
                }
                Err(e) => return Err(e.into()),
            }
        }
        UsersCommand::List { data } => {
            let store = crate::cli::open_data_store(&data).await?;
            let users = store.list_console_users().await;
            store.close().await;
            println!("USERNAME\tROLE\tOPERATOR");
            for u in users? {
                println!(
                    "{}\t{}\t{}",
                    u.username,
                    u.role,
                    u.operator_id.as_deref().unwrap_or("*")
                );
            }
        }
        UsersCommand::Remove { data, username } => {
            let store = crate::cli::open_data_store(&data).await?;
            let gone = store.delete_console_user(&username).await;
            let recorded = match &gone {
                Ok(true) => {
                    record(
                        &store,
                        "console.user.remove",
                        &username,
                        serde_json::json!({}),
                    )
                    .await
                }
                _ => Ok(()),
            };
            store.close().await;
            recorded?;
            if !gone? {
                bail!("no console user {username}");
            }
            println!("removed console user {username}");
        }
        UsersCommand::Passwd {
            data,
            username,
            password_file,
        } => {
            let password = read_password(password_file.as_ref())?;
            let store = crate::cli::open_data_store(&data).await?;
            let changed = store
                .set_console_password(&username, &hash_password(&password)?)
                .await;
            // Never the password nor its hash: only that it changed.
            let recorded = match &changed {
                Ok(true) => {
                    record(
                        &store,
                        "console.user.passwd",
                        &username,
                        serde_json::json!({}),
                    )
                    .await
                }
                _ => Ok(()),
            };
            store.close().await;
            recorded?;
            if !changed? {
                bail!("no console user {username}");
            }
            println!("password of {username} changed; their sessions were ended");
        }
    }
    Ok(())
}

/// [`run`] on a new tokio runtime.
pub fn run_blocking(cmd: ConsoleCommand) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cmd))
}
