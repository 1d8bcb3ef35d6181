//! ClickHouseDdl: owns the ClickHouse connection of a run and applies the schema on request.
//! The DDL and its checks are in `clickhouse::schema` / `clickhouse::setup`; this only drives
//! them, one request at a time (requests queue in the mailbox, so two setups never interleave).

use std::time::Duration;

use actix::prelude::*;

use crate::clickhouse::ClickHouse;
use crate::clickhouse::schema::Target;
use crate::clickhouse::setup::{SetupError, SetupReport, setup_with_patience};
use crate::messages::ApplySchema;

pub struct ClickHouseDdl {
    ch: ClickHouse,
    target: Target,
    /// How long an unreachable server is waited for before a request fails.
    patience: Duration,
}

impl ClickHouseDdl {
    pub fn new(ch: ClickHouse, target: Target, patience: Duration) -> ClickHouseDdl {
        ClickHouseDdl {
            ch,
            target,
            patience,
        }
    }
}

impl Actor for ClickHouseDdl {
    type Context = Context<Self>;
}

impl Handler<ApplySchema> for ClickHouseDdl {
    type Result = AtomicResponse<Self, Result<SetupReport, SetupError>>;

    fn handle(&mut self, msg: ApplySchema, _: &mut Context<Self>) -> Self::Result {
        let (ch, target, patience) = (self.ch.clone(), self.target.clone(), self.patience);
        AtomicResponse::new(Box::pin(
            async move { setup_with_patience(&ch, &target, msg.recreate, patience).await }
                .into_actor(self),
        ))
    }
}
