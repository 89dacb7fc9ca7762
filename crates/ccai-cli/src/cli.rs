//! The command line's shape: every command, flag and environment variable.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Args, Parser, Subcommand};

use crate::setting_name;

/// Work with CloudContactAI webhooks: manage endpoints, sign and verify, trigger test events and
/// receive them locally.
///
/// Settings come from flags, then the environment (CCAI_CLIENT_ID, CCAI_API_KEY, CCAI_BASE_URL,
/// CCAI_WEBHOOK_SECRET), then a .env file in the current directory. Only ./.env is read: parent
/// directories are not searched.
#[derive(Parser)]
#[command(name = "ccai", version, propagate_version = true)]
#[command(
    after_help = "Examples:\n  ccai listen                       # terminal 1: a local receiver\n  ccai trigger message.sent         # terminal 2: a signed test event\n  ccai webhooks list --json"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub account: AccountArgs,

    #[command(flatten)]
    pub log: crate::logging::LogArgs,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The command line as parsed, noting which settings came from flags rather than the
    /// environment (clap's derive does not keep that). Exits as `Cli::parse` does on a usage error.
    pub(crate) fn parse_args() -> Self {
        let mut command = ignore_empty_env(crate::global_options::hidden_where_unused(
            <Self as clap::CommandFactory>::command(),
        ));
        let args = crate::duration_flag::attach_negative_values(std::env::args_os());
        let mut matches = command.clone().get_matches_from(args);
        // Before `from_arg_matches_mut`, which takes the values out.
        let flag = |id| matches.value_source(id) == Some(ValueSource::CommandLine);
        let base_url_flag = flag("base_url");
        let client_id_flag = flag("client_id");
        // Where the API settings came from, for the API's errors to name.
        let api_sources = crate::api_error::Sources {
            client_id: matches.value_source("client_id"),
            api_key: matches.value_source("api_key"),
            base_url: matches.value_source("base_url"),
        };
        // `--secret` is the command's own (sign, verify, trigger, listen), not a global one.
        let leaf_matches = leaf(&matches);
        let secret_flag = source(leaf_matches, "secret") == Some(ValueSource::CommandLine);
        // Where `--store`, `ccai ui --token` and `--admin-token` came from, for their errors.
        let store_source = source(leaf_matches, "store");
        let token_source = source(leaf_matches, "token");
        let admin_token_source = source(leaf_matches, "admin_token");
        let listen_typed = matches
            .subcommand_matches("listen")
            .map(crate::commands::listen::flags_needing_another::typed);
        let mut cli = match <Self as clap::FromArgMatches>::from_arg_matches_mut(&mut matches) {
            Ok(cli) => cli,
            Err(e) => e.format(&mut command).exit(),
        };
        cli.account.base_url_flag = base_url_flag;
        cli.account.client_id_flag = client_id_flag;
        cli.account.sources = api_sources;
        if let (Command::Listen(args), Some(typed)) = (&mut cli.command, listen_typed) {
            args.typed = typed;
        }
        if let Some(secret) = cli.command.secret_mut() {
            secret.secret_flag = secret_flag;
        }
        match &mut cli.command {
            Command::Ui(args) => {
                args.store.source = store_source;
                args.token_source = token_source;
            }
            Command::Events(command) => command.store_mut().source = store_source,
            Command::Listen(args) => args.admin.admin_token_source = admin_token_source,
            _ => {}
        }
        cli
    }
}

/// The matches of the subcommand that runs (`listen` for `ccai listen`, `list` for `ccai events
/// list`).
pub(crate) fn leaf(matches: &clap::ArgMatches) -> &clap::ArgMatches {
    match matches.subcommand() {
        Some((_, sub)) => leaf(sub),
        None => matches,
    }
}

/// Where the value of the argument `id` of `matches` came from, if it has one (`None` too for
/// an argument these matches do not define, where `value_source` would panic).
pub(crate) fn source(matches: &clap::ArgMatches, id: &str) -> Option<ValueSource> {
    if matches.ids().any(|present| present.as_str() == id) {
        matches.value_source(id)
    } else {
        None
    }
}

/// `command` with each argument's environment variable ignored when it is set to nothing, as
/// `CCAI_DATA_DIR`, `CCAI_LOG_FORMAT` and `ccai listen`'s `CCAI_STORE` are: clap reads
/// `CCAI_STORE=` as an empty `--store` and fails over a flag nobody gave, where a blanked
/// variable means "not set".
fn ignore_empty_env(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| match arg.get_env() {
            Some(name) if std::env::var_os(name).is_some_and(|value| value.is_empty()) => {
                arg.env(None)
            }
            _ => arg,
        })
        .mut_subcommands(ignore_empty_env)
}

/// The help heading of the options only `ccai webhooks` uses: listed in `ccai --help` among the
/// others, they read as if every command needed them (the other commands accept them, as they
/// are global, but list them nowhere: see `global_options`).
const API_HEADING: &str = "Management API options (ccai webhooks)";

/// Who you are to CloudContactAI.
#[derive(Args)]
pub(crate) struct AccountArgs {
    /// Your CloudContactAI account (client) id.
    ///
    /// `ccai events list`, `show` and `replay`, and `ccai ui`, take it as a flag only, not from
    /// the environment: the account whose events to list, show, replay or view in an inbox
    /// several accounts share.
    #[arg(long, env = "CCAI_CLIENT_ID", global = true, hide_env_values = true)]
    pub client_id: Option<String>,

    /// Your API key (management commands only).
    #[arg(
        long,
        env = "CCAI_API_KEY",
        global = true,
        hide_env_values = true,
        help_heading = API_HEADING
    )]
    pub api_key: Option<String>,

    /// The API's base URL (default: production, or the test environment with --test-env).
    #[arg(
        long,
        env = "CCAI_BASE_URL",
        global = true,
        hide_env_values = true,
        help_heading = API_HEADING
    )]
    pub base_url: Option<String>,

    /// Use CloudContactAI's test environment (wins over CCAI_BASE_URL; not with --base-url).
    #[arg(long, global = true, help_heading = API_HEADING)]
    pub test_env: bool,

    /// Whether `base_url` came from the `--base-url` flag (not `CCAI_BASE_URL` or `.env`): set
    /// after parsing (see [`Cli::parse_args`]), so that `--test-env` wins over the environment
    /// but conflicts with the flag.
    #[arg(skip)]
    pub base_url_flag: bool,

    /// Whether `client_id` came from the `--client-id` flag: `ccai events` narrows to an account
    /// only when asked on its command line, as the inbox may hold other accounts' events than
    /// the one `CCAI_CLIENT_ID` configures for signing and the API.
    #[arg(skip)]
    pub client_id_flag: bool,

    /// Where the client id, API key and base URL came from: set after parsing (see
    /// [`Cli::parse_args`]), for the API's errors to name the flag or variable to check.
    #[arg(skip)]
    pub sources: crate::api_error::Sources,
}

/// The webhook signing secret, for the commands that sign or verify.
#[derive(Args)]
pub(crate) struct SecretArgs {
    /// The webhook secret (default: the development secret that `ccai listen` created).
    #[arg(long, env = "CCAI_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// Whether `secret` came from the `--secret` flag: set after parsing (see
    /// [`Cli::parse_args`]). An empty `--secret ''` is refused, where an empty
    /// `CCAI_WEBHOOK_SECRET` counts as unset.
    #[arg(skip)]
    pub secret_flag: bool,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Manage the endpoints CloudContactAI delivers to.
    #[command(
        after_help = "Examples:\n  ccai webhooks list\n  ccai webhooks register --url https://example.com/webhook/ccai\n  ccai webhooks delete 42 --json\n  ccai webhooks list --timeout 2m   # a slow network"
    )]
    Webhooks(WebhooksArgs),

    /// Print the X-CCAI-Signature for an event hash.
    #[command(
        after_help = "Example:\n  ccai sign --event-hash 042896dc1966b8a6 --client-id 1231 --secret my-secret"
    )]
    Sign {
        /// The delivery's eventHash.
        #[arg(long)]
        event_hash: String,
        #[command(flatten)]
        secret: SecretArgs,
    },

    /// Check a signature. Exits 0 when it verifies, 1 (with the reason) when not, 2 on an error
    /// (such as a body that is not a delivery).
    #[command(
        after_help = "Examples:\n  ccai verify --signature 'Sr3d…a6Y=' --event-hash event-hash-abc123\n  ccai verify --signature 'Sr3d…a6Y=' --body delivery.json\n  ccai verify --signature 'Sr3d…a6Y=' --body - < delivery.json   # the body on standard input"
    )]
    // One of --event-hash and --body, as a group: the usage line and the error for neither name
    // both (`required_unless_present` named --event-hash alone).
    #[command(group(clap::ArgGroup::new("checked").args(["event_hash", "body"]).required(true)))]
    Verify {
        /// The X-CCAI-Signature header value.
        #[arg(long)]
        signature: String,
        /// The delivery's eventHash.
        #[arg(long)]
        event_hash: Option<String>,
        /// A file holding the raw delivery body (its eventHash is verified; one that is not a
        /// delivery is an error); - reads it from standard input.
        #[arg(long, value_name = "FILE")]
        body: Option<PathBuf>,
        #[command(flatten)]
        secret: SecretArgs,
    },

    /// Send a realistic, signed test delivery of an event type.
    #[command(
        after_help = "Examples:\n  ccai trigger message.sent\n  ccai trigger message.incoming --set Message='STOP' --to http://localhost:3000/webhook/ccai\n  ccai trigger message.sent --repeat 3      # the same delivery three times (retries)"
    )]
    Trigger(TriggerArgs),

    /// Receive deliveries locally: verify, store, print and optionally forward them.
    #[command(
        after_help = "Examples:\n  ccai listen\n  ccai listen --port 9000 --forward-to http://localhost:3000/webhook/ccai\n  ccai listen --events message.sent,message.incoming --json"
    )]
    Listen(Box<ListenArgs>),

    /// Print a shell completion script to stdout.
    #[command(
        after_help = "Examples:\n  ccai completions bash > ~/.local/share/bash-completion/completions/ccai\n  ccai completions zsh > \"${fpath[1]}/_ccai\"\n  ccai completions fish > ~/.config/fish/completions/ccai.fish\n  ccai completions powershell >> $PROFILE"
    )]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },

    /// Inspect and manage the durable inbox `ccai listen` stores deliveries in: list, show,
    /// replay, purge, stats.
    #[command(subcommand)]
    #[command(
        after_help = "Examples:\n  ccai events list --status dead --since 1h\n  ccai events show 042896dc1966\n  ccai events replay --status dead\n  ccai events replay 042896dc1966b8a6 --to http://localhost:3000/webhook/ccai\n  ccai events purge --older-than 30d\n  ccai events stats --json"
    )]
    Events(EventsCommand),

    /// Serve a browser view of the durable inbox: a live list, details, replay, counters
    /// (--client-id: one account's events only, where several share the inbox).
    #[command(
        after_help = "Examples:\n  ccai ui                          # http://127.0.0.1:8081/\n  ccai ui --store ./inbox.db --port 9001\n  ccai ui --host 0.0.0.0           # off the loopback: a token is generated and required\n  ccai ui --client-id 1231         # that account's events only"
    )]
    Ui(UiArgs),
}

impl Command {
    /// The command's `--secret`, for those that sign or verify.
    fn secret_mut(&mut self) -> Option<&mut SecretArgs> {
        match self {
            Self::Sign { secret, .. } | Self::Verify { secret, .. } => Some(secret),
            Self::Trigger(args) => Some(&mut args.secret),
            Self::Listen(args) => Some(&mut args.secret),
            _ => None,
        }
    }
}

/// `ccai ui`: where the browser view listens and which inbox it shows.
#[derive(Args)]
pub(crate) struct UiArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The port to serve the view on (0 picks a free one).
    #[arg(long, default_value_t = 8081)]
    pub port: u16,
    /// The address to bind the view to. Any address other than the loopback requires a token.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub host: String,
    /// The token the view requires (`Authorization: Bearer TOKEN` or `?token=TOKEN`). Off the
    /// loopback one is generated and printed when not given.
    #[arg(long, env = "CCAI_UI_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Where `token` came from (set after parsing): its errors name `CCAI_UI_TOKEN` when it
    /// came from there.
    #[arg(skip)]
    pub token_source: Option<ValueSource>,
}

/// `ccai webhooks …`: what every management API command shares, and the command.
#[derive(Args)]
pub(crate) struct WebhooksArgs {
    /// How long the API may take to answer one attempt, like 30s or 2m. A list, get or delete
    /// that times out is tried up to twice more; a register or update is not (it may have
    /// taken effect).
    #[arg(long, global = true, default_value = "30s", value_name = "DURATION")]
    pub timeout: String,
    #[command(subcommand)]
    pub command: WebhooksCommand,
}

#[derive(Subcommand)]
pub(crate) enum WebhooksCommand {
    /// List the registered endpoints.
    ///
    /// An entry of the API's answer that ccai cannot read is named on standard error (never its
    /// secret) and left out: the readable ones are still printed, and the exit code is 2, as for
    /// any error, since the list is incomplete.
    #[command(after_help = "Example:\n  ccai webhooks list --json")]
    List(OutputArgs),
    /// Show one endpoint.
    #[command(after_help = "Example:\n  ccai webhooks get 42")]
    Get {
        /// The integration id.
        id: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Register an endpoint. Without --secret the server generates one: it is shown once, store it.
    #[command(
        after_help = "Examples:\n  ccai webhooks register --url https://example.com/webhook/ccai\n  export CCAI_WEBHOOK_SECRET=$(ccai webhooks register --url https://example.com/hook --print-secret)"
    )]
    Register {
        #[command(flatten)]
        endpoint: EndpointArgs,
        /// Print only the secret (for scripts).
        #[arg(long, conflicts_with = "json")]
        print_secret: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Change an endpoint's URL, method or secret.
    #[command(
        after_help = "Example:\n  ccai webhooks update 42 --url https://example.com/new-path"
    )]
    Update {
        /// The integration id (an integer).
        id: String,
        #[command(flatten)]
        endpoint: EndpointArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Delete an endpoint.
    ///
    /// Any 2xx answer is a delete done. When an attempt gets no clear answer (a timeout, a lost
    /// connection, a 500/502/504) it is retried, and a retry answered 404 means that attempt
    /// most likely deleted it: reported as gone, with exit code 0 (`"notFoundOnRetry": true`
    /// with --json).
    #[command(after_help = "Example:\n  ccai webhooks delete 42")]
    Delete {
        /// The integration id.
        id: String,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Args)]
pub(crate) struct OutputArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `ccai events …`: the durable inbox.
#[derive(Subcommand)]
pub(crate) enum EventsCommand {
    /// List stored events, newest first (with a CLIENT ID column when they are several
    /// accounts'; --client-id lists one account's).
    #[command(
        after_help = "Examples:\n  ccai events list\n  ccai events list --status dead --type message.sent --since 2d\n  ccai events list --contains '+14155550100' --json\n  ccai events list --client-id 1231"
    )]
    List(EventsListArgs),
    /// Show one event: its deliveries, attempts and body (never the full signature).
    #[command(
        after_help = "Examples:\n  ccai events show 042896dc1966b8a6\n  ccai events show 042896dc1966 --client-id 1231   # the account's, where several hold the hash"
    )]
    Show {
        /// The event's eventHash, whole or its start as `ccai events list` shows it (at least 6
        /// characters, shared by no other stored hash). Where several accounts stored an event
        /// under it, --client-id says whose (without it, the error lists their client ids).
        hash: String,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Make events due again (a `ccai listen --forward-to` on the store, running or started
    /// later, delivers them), or send them now with --to.
    #[command(
        after_help = "Examples:\n  ccai events replay 042896dc1966b8a6\n  ccai events replay 042896dc1966b8a6 --client-id 1231\n  ccai events replay --status dead --type message.sent\n  ccai events replay --status dead --client-id 1231 --to http://localhost:3000/webhook/ccai"
    )]
    Replay(EventsReplayArgs),
    /// Delete old bodies, then old events, of events whose deliveries are all delivered or dead
    /// (pending and in-progress ones are never purged).
    #[command(after_help = "Example:\n  ccai events purge --older-than 30d --keep-hashes-for 90d")]
    Purge(EventsPurgeArgs),
    /// Counts per status, duplicates, conflicts and the oldest pending age.
    #[command(after_help = "Example:\n  ccai events stats --json")]
    Stats {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Which inbox file.
#[derive(Args)]
pub(crate) struct StoreArgs {
    /// The inbox file (default: `<data dir>/ccai/inbox.db`, the data dir being CCAI_DATA_DIR or
    /// your platform's), or a PostgreSQL database: postgres://user@host:port/db[?schema=s].
    #[arg(
        long,
        env = "CCAI_STORE",
        value_name = "PATH|URL",
        hide_env_values = true
    )]
    pub store: Option<PathBuf>,
    /// Where `store` came from (set after parsing): its errors name `CCAI_STORE` when it came
    /// from there.
    #[arg(skip)]
    pub source: Option<ValueSource>,
}

impl StoreArgs {
    /// The name to give the store in an error: `--store`, or `CCAI_STORE`.
    pub(crate) fn name(&self) -> &'static str {
        setting_name::STORE.shown(self.source)
    }
}

impl EventsCommand {
    /// The command's store.
    fn store_mut(&mut self) -> &mut StoreArgs {
        match self {
            Self::List(args) => &mut args.store,
            Self::Show { store, .. } | Self::Stats { store, .. } => store,
            Self::Replay(args) => &mut args.store,
            Self::Purge(args) => &mut args.store,
        }
    }
}

/// Which events, by delivery status and type.
#[derive(Args)]
pub(crate) struct EventFilterArgs {
    /// Only events with a delivery in this status: pending, in_progress, delivered or dead.
    #[arg(long)]
    pub status: Option<String>,
    /// Only events of this eventType.
    #[arg(long = "type", value_name = "TYPE")]
    pub event_type: Option<String>,
}

#[derive(Args)]
pub(crate) struct EventsListArgs {
    #[command(flatten)]
    pub filter: EventFilterArgs,
    /// Only events received since: an age (30m, 1h, 2d) or an RFC 3339 time.
    #[arg(long, value_name = "AGE|TIME")]
    pub since: Option<String>,
    /// Only events whose body contains this text (case-sensitive).
    #[arg(long, value_name = "TEXT")]
    pub contains: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print one JSON object per line (full hashes) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub(crate) struct EventsReplayArgs {
    /// The eventHash of each event to replay (whole, or its start as the lists show it); where
    /// several accounts stored an event under it, --client-id says whose.
    #[arg(value_name = "HASH", conflicts_with_all = ["status", "event_type"])]
    pub hashes: Vec<String>,
    /// Replay every event matching (--status dead: dead deliveries start their retries over;
    /// --client-id narrows it to one account's events).
    #[command(flatten)]
    pub filter: EventFilterArgs,
    /// Send each event now to this URL (exact body, original X-CCAI-Signature and Content-Type)
    /// instead of marking it due; the store is not changed. Stops after 3 sends in a row fail
    /// to reach it (an answer, even a 500, reaches it).
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print one JSON object per line (a bulk replay with --to ends with one of the counts:
    /// sent, failed, notTried, bodyPurgedEvents).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub(crate) struct EventsPurgeArgs {
    /// Delete the bodies of finished events (every delivery delivered or dead: a dead event
    /// cannot be replayed once its body is gone) received longer ago than this (30d, 12h, …).
    /// An event with a delivery pending or in progress keeps its body.
    #[arg(long, value_name = "AGE")]
    pub older_than: String,
    /// Delete finished events entirely when received longer ago than this; until then a late
    /// retry of the sender is still recognised as a duplicate.
    #[arg(long, value_name = "AGE", default_value = "90d")]
    pub keep_hashes_for: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print the counts as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub(crate) struct EndpointArgs {
    /// The endpoint URL CloudContactAI should deliver to.
    #[arg(long)]
    pub url: String,
    /// The signing secret (register: the server generates one by default; update: unchanged).
    #[arg(long)]
    pub secret: Option<String>,
    /// How CloudContactAI delivers: POST or PUT (register: POST by default; update: unchanged).
    #[arg(long)]
    pub method: Option<String>,
}

#[derive(Args)]
pub(crate) struct TriggerArgs {
    /// The event type: message.sent, message.incoming, message.received, message.excluded,
    /// message.error.carrier or message.error.cloudcontact.
    #[arg(value_parser = EventTypeParser, hide_possible_values = true)]
    pub event_type: String,
    /// Where to send it (default: the URL `ccai listen` last announced, else
    /// http://127.0.0.1:8080/webhook).
    #[arg(long)]
    pub to: Option<String>,
    /// Override a field inside `data` (repeatable). Numbers stay numbers where the field is numeric;
    /// a quoted JSON string (`--set 'TotalPrice="0.02"'`) is sent as that string. A value the
    /// event type defines otherwise (`--set Segments=abc`) is sent as given, with a warning.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A JSON file whose object replaces `data` (before --set); - reads it from standard input.
    #[arg(long, value_name = "FILE")]
    pub data_file: Option<PathBuf>,
    /// Send the same delivery (same eventHash) this many times.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub repeat: u32,
    /// The HTTP method to deliver with: POST or PUT (`ccai listen` takes PUT with --accept-put).
    #[arg(long, default_value = "POST")]
    pub method: String,
    #[command(flatten)]
    pub secret: SecretArgs,
}

#[derive(Args)]
pub(crate) struct ListenArgs {
    /// The port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The address to bind: 0.0.0.0 for every IPv4 address, `::` (or `[::]`) for every IPv6
    /// one (the announced URL then names the loopback, 127.0.0.1 or `[::1]`).
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    pub host: String,
    /// The path deliveries arrive at.
    #[arg(long, default_value = "/webhook")]
    pub path: String,
    /// Forward each verified delivery (exact bytes, signature and content type) to this URL.
    /// With the store: answered 200 once stored, then forwarded with retries (store-and-forward);
    /// events stored earlier and not yet forwarded are forwarded too. With --no-store: forwarded
    /// before answering, and a failed forward is answered 500 so that the sender retries. Each
    /// forward carries X-CCAI-Forwarded-By naming this receiver, which answers 508 to its own
    /// forwards coming back (a URL that reaches it through another address or a proxy).
    #[arg(long, value_name = "URL")]
    pub forward_to: Option<String>,
    /// Only print these event types (comma-separated); others are acknowledged silently. With
    /// --no-store, only these are forwarded; with the store, every event is stored and forwarded.
    #[arg(long, value_delimiter = ',')]
    pub events: Vec<String>,
    /// Print one JSON object per line instead of readable lines.
    #[arg(long)]
    pub json: bool,
    /// Print no line per event or forward (rejections and errors still go to stderr, and a
    /// failing forward target is told once when it starts failing and once when it works again).
    #[arg(long)]
    pub quiet: bool,
    /// Accept PUT deliveries too (for integrations registered with --method PUT).
    #[arg(long)]
    pub accept_put: bool,
    /// The SQLite file every verified delivery is stored in before it is answered 200 (default:
    /// CCAI_STORE, else `<data dir>/ccai/inbox.db`; CCAI_DATA_DIR replaces the data dir). Created
    /// if missing. Or a PostgreSQL database, postgres://user@host:port/db[?schema=s], shared by
    /// several receivers (each event stored and forwarded once across them; --sync does not
    /// apply).
    // CCAI_STORE is read in `store()`, not by clap: with `env`, a CCAI_STORE set for the
    // `ccai events` commands made `--no-store` conflict with a --store never given.
    #[arg(long, value_name = "PATH|URL", conflicts_with = "no_store")]
    pub store: Option<PathBuf>,
    /// Keep nothing on disk: deliveries are only printed (and forwarded before answering).
    #[arg(long)]
    pub no_store: bool,
    /// How hard each stored delivery is synced to disk: full survives a process crash and a power
    /// loss; normal survives a process crash, not a power loss (the last deliveries may be lost
    /// if the machine goes down), and is faster. Default full. SQLite only: a PostgreSQL store
    /// always commits with synchronous_commit on.
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        value_name = "full|normal",
        conflicts_with = "no_store"
    )]
    pub sync: Option<SyncMode>,
    /// The delays between forward attempts (with ±20 % jitter); after the last one the event is
    /// dead (default 5s,5m,30m,2h,5h,10h,10h; each delay longer than 0 and at most 30d). A target
    /// answering 410 Gone makes it dead at once, without more retries.
    #[arg(
        long,
        value_name = "DELAYS",
        requires = "forward_to",
        conflicts_with = "no_store"
    )]
    pub retry_schedule: Option<String>,
    /// On Ctrl-C or SIGTERM, how long forwards and requests in flight may finish (default 10s;
    /// with --no-store 30s, the forward timeout, as a request is its forward); stored forwards
    /// still in flight are put back and forwarded at the next start.
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<String>,
    /// How many forwards may be in flight at once (with --forward-to). Each claim and each outcome
    /// is a commit: more in flight means more of them share one disk sync.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 16,
        value_parser = clap::value_parser!(u16).range(1..=1024),
        requires = "forward_to",
        conflicts_with = "no_store"
    )]
    pub forward_concurrency: u16,
    /// Also serve the browser view of the store (see `ccai ui`) on --ui-host and --ui-port.
    #[arg(long, conflicts_with = "no_store")]
    pub ui: bool,
    /// The port of the browser view (with --ui; 0 picks a free one).
    #[arg(long, value_name = "PORT", default_value_t = 8081)]
    pub ui_port: u16,
    /// The address of the browser view (with --ui). Any address other than the loopback
    /// requires a token.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub ui_host: String,
    /// The token the browser view requires (with --ui; default CCAI_UI_TOKEN); generated off the
    /// loopback when not given.
    // CCAI_UI_TOKEN is read in `ui_token()`: with `env`, setting it for `ccai ui` made a plain
    // `ccai listen` fail for want of --ui.
    #[arg(long, value_name = "TOKEN")]
    pub ui_token: Option<String>,
    /// How long a client may take to send a request's headers; slower ones are cut off (a slow
    /// sender must not hold a connection forever).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub header_timeout: String,
    /// How long an idle keep-alive connection stays open.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub idle_timeout: String,
    /// How long a client may take to send a request's body; slower ones are answered 408.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub body_timeout: String,
    /// At most this many connections at once; more wait until one closes, so the process never
    /// runs out of file descriptors.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 512,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000)
    )]
    pub max_connections: u32,
    /// How many threads serve HTTP (default: one per core; with a SQLite store one fewer, at
    /// least one, as its writer thread needs a core of its own). TOKIO_WORKER_THREADS also sets
    /// it.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..=crate::runtime::MAX_WORKERS as i64)
    )]
    pub http_workers: Option<u16>,
    #[command(flatten)]
    pub admin: crate::commands::listen::admin::AdminArgs,
    #[command(flatten)]
    pub secret: SecretArgs,
    /// Which flags that need another (`--admin-token`, `--ui-port`, …) were typed on the
    /// command line: set after parsing (see [`Cli::parse_args`]), checked by `listen`.
    #[arg(skip)]
    pub typed: Vec<&'static str>,
}

/// An environment variable's value, unless unset or empty.
fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl ListenArgs {
    /// `--store`, else `CCAI_STORE` (`None` with `--no-store`).
    pub(crate) fn store(&self) -> Option<PathBuf> {
        if self.no_store {
            return None;
        }
        // As an `OsString`, as clap reads it for `ccai events`: a file name need not be UTF-8.
        self.store.clone().or_else(|| {
            std::env::var_os("CCAI_STORE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }

    /// The name to give the store in an error: `--store`, `CCAI_STORE` when it came from
    /// there, or "the default store" when neither was given.
    pub(crate) fn store_name(&self) -> &'static str {
        match source_of(&self.store, "CCAI_STORE") {
            None => "the default store",
            source => setting_name::STORE.shown(source),
        }
    }

    /// `--ui-token`, else `CCAI_UI_TOKEN` (`None` without `--ui`).
    pub(crate) fn ui_token(&self) -> Option<String> {
        if !self.ui {
            return None;
        }
        self.ui_token.clone().or_else(|| env_value("CCAI_UI_TOKEN"))
    }

    /// Where [`Self::ui_token`] came from, as clap would say it.
    pub(crate) fn ui_token_source(&self) -> Option<ValueSource> {
        source_of(&self.ui_token, "CCAI_UI_TOKEN")
    }
}

/// Where a setting that `ccai listen` reads from its environment variable `env` itself came
/// from: the command line when the flag has a value, else the environment when the variable is
/// set (not empty), else nowhere (a default).
fn source_of<T>(flag: &Option<T>, env: &str) -> Option<ValueSource> {
    if flag.is_some() {
        Some(ValueSource::CommandLine)
    } else if std::env::var_os(env).is_some_and(|v| !v.is_empty()) {
        Some(ValueSource::EnvVariable)
    } else {
        None
    }
}

/// `ccai listen --sync`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub(crate) enum SyncMode {
    /// Survives a process crash and a power loss.
    Full,
    /// Survives a process crash, not a power loss.
    Normal,
}

/// The known event types, borrowed for as long as completions need them.
static KNOWN_EVENT_TYPES: [ccai::event::WebhookEventType; 6] = ccai::event::WebhookEventType::KNOWN;

/// `ccai trigger`'s event type: any text (`trigger` says itself what is wrong with an unknown
/// one), with the known types offered to shell completion, which had nothing to complete.
#[derive(Clone)]
struct EventTypeParser;

impl clap::builder::TypedValueParser for EventTypeParser {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            KNOWN_EVENT_TYPES
                .iter()
                .map(|t| clap::builder::PossibleValue::new(t.as_str())),
        ))
    }
}
