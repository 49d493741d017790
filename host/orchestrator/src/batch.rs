//! `POST /process/request/{path}`: one batch job, run by the capability's backend, its answer
//! (plain or SSE) streamed back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use byoc_payment::Balance;
use byoc_protocol::{BatchPath, headers};
use futures_util::StreamExt;
use http::HeaderMap;

use crate::backend::{BatchAnswer, BatchJob};
use crate::error::ApiError;
use crate::orchestrator::{Orchestrator, VerifiedJob, job_timeout};
use crate::payments::{self, Payer};
use crate::registry::Reserved;

pub(crate) async fn process(
    State(orch): State<Arc<Orchestrator>>,
    uri: http::Uri,
    h: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Checked before anything else: the route is forwarded to the worker, and must not reach
    // any of its other routes (its `/stream/*`, say) whatever the client wrote.
    let route = BatchPath::from_request_path(uri.path()).map_err(ApiError::bad_request)?;
    let VerifiedJob { job, sender } = orch.job(&h)?;
    let Reserved { capability: cap, reservation } = orch.reserve(&job.capability)?;
    // Priced: paid before (the job's tickets, the minimum balance), charged for its time after.
    let payer = payments::prepare(orch.payments.as_ref(), &h, sender, &cap, None).await?;
    let charge = Charge { orch: orch.clone(), payer, began: Instant::now() };
    let batch = BatchJob {
        capability: &cap.name,
        sender,
        route: &route,
        headers: &h,
        body,
        timeout: job_timeout(&job),
        max_body_bytes: orch.config.max_body_bytes,
    };
    let answer = cap.backend.batch(&orch.http, batch).await.map_err(|e| orch.refused(&cap, e))?;
    Ok(match answer {
        BatchAnswer::Complete(mut out) => {
            drop(reservation);
            let balance = charge.finish();
            out.headers_mut().insert(headers::BALANCE, payments::balance_header(&balance));
            out
        }
        BatchAnswer::Streaming(out) => {
            let (mut parts, body) = out.into_parts();
            parts.headers.insert(headers::BALANCE, payments::balance_header(&charge.balance_now()));
            // The slot stays reserved, and the time charged, until the whole answer has been
            // streamed (or the client left).
            let body = body.into_data_stream().map(move |chunk| {
                let _held = (&reservation, &charge);
                chunk
            });
            Response::from_parts(parts, Body::from_stream(body))
        }
    })
}

/// Charges a batch job for its time, in whole seconds rounded up (as go-livepeer does), once:
/// when the job's answer is complete or abandoned.
struct Charge {
    orch: Arc<Orchestrator>,
    payer: Option<Payer>,
    began: Instant,
}

/// What a job costs, and who pays it.
struct Cost<'a> {
    payer: &'a Payer,
    amount: Balance,
}

impl Charge {
    fn cost(&self) -> Option<Cost<'_>> {
        let payer = self.payer.as_ref()?;
        let secs = self.began.elapsed().as_secs_f64().ceil().max(1.0) as u64;
        Some(Cost { payer, amount: payments::cost_of(&payer.price, Duration::from_secs(secs)) })
    }

    /// The balance once this job is charged (not charged yet).
    fn balance_now(&self) -> Balance {
        match (&self.orch.payments, self.cost()) {
            (Some(p), Some(cost)) => &p.balance_of(&cost.payer.key) - &cost.amount,
            _ => Balance::zero(),
        }
    }

    /// Charges now; returns the balance left.
    fn finish(mut self) -> Balance {
        let left = self.charge();
        self.payer = None;
        left
    }

    fn charge(&self) -> Balance {
        match (&self.orch.payments, self.cost()) {
            (Some(p), Some(cost)) => p.debit(&cost.payer.key, &cost.amount),
            _ => Balance::zero(),
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.charge();
    }
}
