//! ClickHouseDdl: owns the ClickHouse connection of a run and applies the schema on request.
//! The DDL and its checks are in `clickhouse::schema` / `clickhouse::setup`; this only drives
//! them, one request at a time (requests queue in the mailbox, so two setups never interleave).
//! How long an unreachable server is waited for is the client's patience.

use actix::prelude::*;

use crate::clickhouse::ClickHouse;
use crate::clickhouse::schema::Target;
use crate::clickhouse::setup::{SetupError, SetupReport, setup};
use crate::messages::ApplySchema;

pub struct ClickHouseDdl {
    ch: ClickHouse,
    target: Target,
}

impl ClickHouseDdl {
    pub fn new(ch: ClickHouse, target: Target) -> ClickHouseDdl {
        ClickHouseDdl { ch, target }
    }
}

impl Actor for ClickHouseDdl {
    type Context = Context<Self>;
}

impl Handler<ApplySchema> for ClickHouseDdl {
    type Result = AtomicResponse<Self, Result<SetupReport, SetupError>>;

    fn handle(&mut self, msg: ApplySchema, _: &mut Context<Self>) -> Self::Result {
        let (ch, target) = (self.ch.clone(), self.target.clone());
        AtomicResponse::new(Box::pin(
            async move { setup(&ch, &target, msg.recreate).await }.into_actor(self),
        ))
    }
}
