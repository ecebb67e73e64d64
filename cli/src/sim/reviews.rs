//! The operator's side of risk reviews in a scenario: an operator decides
//! open reviews (approve or decline, drawn once and never changed) through
//! the faulty handlers, and repeats a decision until it hears a 200 — a
//! crash after the review's commit leaves an approved deposit to open on
//! the repeat. Any 4xx to a repeated decision is a violation: deciding is
//! idempotent.

use http::Method;
use payloop::store::{ItemExt, Query, SkRange};
use rand::Rng;
use serde_json::{json, Value};

use super::scenario::Scenario;
use super::world::{Heard, PLATFORM_KEY};

impl Scenario {
    /// The reviews waiting on the operator (the open list).
    pub async fn open_reviews(&self) -> Vec<String> {
        let q = Query::new(payloop::schema::keys::REVIEW_QUEUE_PK, SkRange::All, 500);
        match self.world.raw.store.query(&q).await {
            Ok(page) => page
                .items
                .iter()
                .filter_map(|it| it.str_attr("review_id").map(str::to_owned))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Open reviews, and decided ones whose answer the operator never heard.
    async fn undecided(&self) -> Vec<String> {
        let mut ids = self.open_reviews().await;
        ids.extend(
            self.review_choices
                .keys()
                .filter(|id| !self.reviews_heard.contains(*id))
                .cloned(),
        );
        ids.sort();
        ids.dedup();
        ids
    }

    /// One decision of the operator's, maybe under a fault.
    pub async fn review(&mut self, faulty: bool) {
        let ids = self.undecided().await;
        if let Some(id) = self.pick(&ids) {
            self.decide_review(&id, faulty).await;
        }
    }

    /// Settling: every review decided and heard.
    pub async fn settle_reviews(&mut self) {
        for id in self.undecided().await {
            self.decide_review(&id, false).await;
        }
    }

    async fn decide_review(&mut self, id: &str, faulty: bool) {
        let approve = match self.review_choices.get(id) {
            Some(a) => *a,
            None => {
                let a = self.rng.random_range(0..100) < 70;
                self.review_choices.insert(id.to_owned(), a);
                a
            }
        };
        let decision = if approve { "approve" } else { "decline" };
        let body = json!({"decision": decision, "note": "sim"}).to_string();
        let plan = self.plan(faulty);
        let auth = vec![("authorization", format!("Bearer {PLATFORM_KEY}"))];
        self.tally.invocations += 1;
        let path = format!("/v1/risk/reviews/{id}/decide");
        match self
            .world
            .http(plan, Method::POST, &path, &auth, &body)
            .await
        {
            Heard::Answer {
                status: 200, body, ..
            } => {
                let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                let want = if approve { "approved" } else { "declined" };
                if v["status"] != want {
                    self.violation(format!("review {id}: decided {decision}, answered {body}"));
                }
                self.reviews_heard.insert(id.to_owned());
            }
            Heard::Answer { status, body, .. } if status < 500 => {
                self.violation(format!("review {id}: {decision} answered {status} {body}"));
                self.reviews_heard.insert(id.to_owned());
            }
            // An outage or a lost answer: the operator decides again later.
            _ => {}
        }
    }
}
