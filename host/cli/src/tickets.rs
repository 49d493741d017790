//! `byoc tickets list|export`: the winning tickets an orchestrator stored (its `--ticket-store`), each
//! with its redemption state (on-chain mode redeems them from this store).

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
        /// Only tickets still in the redemption queue (pending or submitted).
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
                "{:>6}  {:<42}  {:>24}  {:>6}  {:<9}  {:>8}  {:<66}  note",
                "id", "sender", "face_value", "nonce", "state", "attempts", "tx"
            );
            for t in &tickets {
                let w = &t.winning.ticket;
                println!(
                    "{:>6}  {:<42}  {:>24}  {:>6}  {:<9}  {:>8}  {:<66}  {}",
                    t.id,
                    w.sender.to_checksum(),
                    w.face_value.to_string(),
                    w.sender_nonce,
                    t.state.as_str(),
                    t.attempts,
                    t.redeemed_tx.as_deref().or(t.submitted_tx.as_deref()).unwrap_or("-"),
                    t.last_error.as_deref().unwrap_or("")
                );
            }
            println!("{} winning ticket(s)", tickets.len());
        }
        TicketsCommand::Export { store } => print!("{}", open(&store)?.export_json()?),
    }
    Ok(())
}
