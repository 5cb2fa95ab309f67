//! `smdpp webhooks add|list|remove|test`: registering, listing, removing and testing the
//! signed webhooks of [`smdpp_service::webhooks`] from the command line.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use smdpp_core::webhook::EventFilter;
use smdpp_store::Webhook;
use zeroize::Zeroizing;

use crate::cli::DataArgs;
use crate::factory_cli::{block_on, open_all_with};
use smdpp_service::outbox::callback_roots;
use smdpp_service::webhooks::{
    WebhookTls, check_secret, check_webhook_url, generate_secret, seal_secret, send_test,
};

/// `smdpp webhooks add`.
#[derive(Args, Debug, Clone)]
pub struct WebhookAddArgs {
    /// Data location and configuration file.
    #[command(flatten)]
    pub data: DataArgs,
    /// Where events are POSTed: `https://...`, or `http://` to 127.0.0.1 / localhost.
    #[arg(long)]
    pub url: String,
    /// `*` or a comma-separated list of created, released, installed, enabled, disabled,
    /// deleted, deactivated.
    #[arg(long, default_value = "*")]
    pub events: String,
    /// Only events of this operator's profiles.
    #[arg(long)]
    pub operator: Option<String>,
    /// PEM bundle of the CAs that sign the endpoint's TLS certificate: trusted instead of
    /// the system's trust roots for this webhook.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// File holding the secret to sign with (16 to 512 visible ASCII characters); by
    /// default one is generated and printed once.
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
}

/// `smdpp webhooks ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum WebhooksCommand {
    /// Register a webhook; prints its id and (once) its secret.
    Add(WebhookAddArgs),
    /// List the webhooks (never their secrets).
    List {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
    },
    /// Remove a webhook (events already queued for it are not delivered).
    Remove {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// Its id.
        id: String,
    },
    /// Send a signed `webhook.test` event now and print the HTTP status.
    Test {
        /// Data location and configuration file.
        #[command(flatten)]
        data: DataArgs,
        /// Its id.
        id: String,
    },
}

/// What `smdpp webhooks add` made.
#[derive(Debug)]
pub struct AddedWebhook {
    /// The new webhook's id.
    pub id: String,
    /// Its event filter as stored.
    pub events: String,
    /// The generated secret (to show once); `None` when it came from `--secret-file`.
    pub secret: Option<Zeroizing<String>>,
}

fn read_secret_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("--secret-file {}", path.display()))?,
    );
    let secret = text.trim_end_matches(['\r', '\n']);
    check_secret(secret).map_err(|e| anyhow!("--secret-file {}: {e}", path.display()))?;
    Ok(Zeroizing::new(secret.to_owned()))
}

/// `smdpp webhooks add` without the printing: checks every argument before touching the
/// database, then stores the webhook with its secret sealed.
pub async fn add_webhook(a: &WebhookAddArgs) -> anyhow::Result<AddedWebhook> {
    check_webhook_url(&a.url).map_err(|why| anyhow!("--url: {why}"))?;
    let filter = EventFilter::parse(&a.events).map_err(|e| anyhow!("--events: {e}"))?;
    let ca = match &a.ca {
        Some(p) => {
            let pem =
                std::fs::read_to_string(p).with_context(|| format!("--ca {}", p.display()))?;
            callback_roots(&pem).map_err(|e| anyhow!("--ca {}: {e}", p.display()))?;
            Some(pem)
        }
        None => None,
    };
    let given = a.secret_file.as_deref().map(read_secret_file).transpose()?;
    let ca_given = ca.is_some();
    let (store, factory) = open_all_with(&a.data, true).await?;
    let r = async {
        if let Some(op) = &a.operator
            && store.get_operator(op).await?.is_none()
        {
            bail!("unknown operator {op:?} (register it with `smdpp operators add`)");
        }
        let id = format!(
            "wh_{}",
            hex::encode(
                smdpp_service::upp::random_bytes::<8>()
                    .map_err(|_| anyhow!("the system RNG failed"))?
            )
        );
        let (secret, generated) = match given {
            Some(s) => (s, false),
            None => (generate_secret()?, true),
        };
        let (dek_id, sealed) = seal_secret(&factory, &id, secret.as_bytes())?;
        let events = filter.to_string();
        store
            .insert_webhook(&Webhook {
                id: id.clone(),
                url: a.url.trim().to_owned(),
                events: events.clone(),
                operator_id: a.operator.clone(),
                dek_id,
                secret_sealed: sealed,
                ca,
                created_at: 0,
            })
            .await?;
        let details = serde_json::json!({
            "url": url_for_audit(a.url.trim()),
            "events": events,
            "operator": a.operator,
            "ownCa": ca_given,
        });
        crate::audit_cli::record(&store, "webhook.add", &id, details).await?;
        Ok(AddedWebhook {
            id,
            events,
            secret: generated.then_some(secret),
        })
    }
    .await;
    store.close().await;
    r
}

/// A webhook URL as the audit trail keeps it: without user information and query, which
/// may carry a token.
fn url_for_audit(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// One line per webhook: id, URL, events, operator, own CA, creation time. No secrets.
pub fn format_webhooks(list: &[Webhook]) -> String {
    let mut out = String::from("ID\tURL\tEVENTS\tOPERATOR\tCA\tCREATED\n");
    for w in list {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            w.id,
            w.url,
            w.events,
            w.operator_id.as_deref().unwrap_or("-"),
            if w.ca.is_some() { "own" } else { "-" },
            smdpp_service::display::rfc3339(w.created_at),
        ));
    }
    out
}

/// Runs an `smdpp webhooks` command.
pub async fn webhooks_command(cmd: WebhooksCommand) -> anyhow::Result<()> {
    match cmd {
        WebhooksCommand::Add(a) => {
            let added = add_webhook(&a).await?;
            println!("webhook {} added (events: {})", added.id, added.events);
            match &added.secret {
                Some(s) => {
                    println!("secret: {}", s.as_str());
                    println!(
                        "the secret is shown only now: give it to the receiver, which checks \
                         the Smdpp-Signature header with it"
                    );
                }
                None => println!("secret: from the --secret-file"),
            }
        }
        WebhooksCommand::List { data } => {
            let (store, _f) = open_all_with(&data, false).await?;
            let list = store.list_webhooks().await;
            store.close().await;
            print!("{}", format_webhooks(&list?));
        }
        WebhooksCommand::Remove { data, id } => {
            let (store, _f) = open_all_with(&data, false).await?;
            let r = store.delete_webhook(&id).await;
            let recorded = match &r {
                Ok(true) => {
                    let details = serde_json::json!({});
                    crate::audit_cli::record(&store, "webhook.remove", &id, details).await
                }
                _ => Ok(()),
            };
            store.close().await;
            recorded?;
            match r {
                Ok(true) => println!("webhook {id} removed"),
                Ok(false) => bail!("no webhook {id:?}"),
                Err(e) => return Err(e.into()),
            }
        }
        WebhooksCommand::Test { data, id } => {
            let config = smdpp_service::outbox::OutboxConfig::from_env();
            let tls = WebhookTls::new(config.ca_file.as_deref())?;
            let (store, factory) = open_all_with(&data, false).await?;
            let r = send_test(&factory, &store, &tls, &id, config.request_timeout).await;
            store.close().await;
            println!("webhook {id}: HTTP {}", r?);
        }
    }
    Ok(())
}

/// [`webhooks_command`] on a new tokio runtime.
pub fn webhooks_blocking(cmd: WebhooksCommand) -> anyhow::Result<()> {
    block_on(webhooks_command(cmd))
}
