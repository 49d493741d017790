//! `byoc tickets list|export`: the winning tickets an orchestrator stored (its `--ticket-store`).
//! On-chain redemption is out of this machine's reach; the store is the queue a redeemer works
//! from (`byoc_payment::Redeemer`).

use std::path::PathBuf;

use anyhow::Context;
use byoc_payment::TicketStore;

#[derive(clap::Args)]
pub struct TicketsArgs {
    #[command(subcommand)]
    command: TicketsCommand,
}

#[derive(clap::Subcommand)]
enum TicketsCommand {
    /// A table of the stored winning tickets.
    List {
        /// The orchestrator's ticket store (SQLite file).
        #[arg(long)]
        store: PathBuf,
        /// Only tickets not redeemed yet.
        #[arg(long)]
        pending: bool,
    },
    /// Every stored ticket as JSON lines (what a redeemer needs: ticket, signature, recipient rand).
    Export {
        #[arg(long)]
        store: PathBuf,
    },
}

pub fn run(args: TicketsArgs) -> anyhow::Result<()> {
    let open = |p: &PathBuf| {
        anyhow::ensure!(p.is_file(), "no ticket store at {}", p.display());
        TicketStore::open(p).with_context(|| format!("opening {}", p.display()))
    };
    match args.command {
        TicketsCommand::List { store, pending } => {
            let store = open(&store)?;
            let tickets = if pending { store.pending()? } else { store.list()? };
            println!(
                "{:>6}  {:<42}  {:>24}  {:>6}  {:<12}  received_at",
                "id", "sender", "face_value", "nonce", "redeemed"
            );
            for t in &tickets {
                let w = &t.winning.ticket;
                println!(
                    "{:>6}  {:<42}  {:>24}  {:>6}  {:<12}  {}",
                    t.id,
                    w.sender.to_checksum(),
                    w.face_value.to_string(),
                    w.sender_nonce,
                    t.redeemed_tx.as_deref().map_or("no", |_| "yes"),
                    t.received_at
                );
            }
            println!("{} winning ticket(s)", tickets.len());
        }
        TicketsCommand::Export { store } => print!("{}", open(&store)?.export_json()?),
    }
    Ok(())
}
