//! The controller's grid-charge path (protocol §12, docs/control.md): a
//! [`SetRequest::GridCharge`] or [`SetRequest::GridChargeOff`] becomes the timer-task
//! plan of `protocol::timer` — checked against the configured maximum
//! (`[control] grid_charge_max_w`: the Fit's rating is unknown, so without it a grid
//! charge is refused) and 100 W per online pack — and its 96/125 frames go out one by
//! one, each confirmed by the device's next task list (96/10 push, or the answer to the
//! 96/127 request the source sends after each frame) before the next. Applied only when
//! the list shows the whole request.

use std::sync::Arc;

use model::{SetOutcome, StoreEvent};
use protocol::timer::{GridChargeLimits, TimerRequest, TimerTask, TimerWrite};
use protocol::{SetError, SetRequest};
use sources::SourceHandle;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::control::{Controller, GET_ALL_EVERY, refused};

impl Controller {
    /// A grid-charge write after [`SetRequest::validate`]; the same gates as the other
    /// settings (dry run, control on, known device, coalescing, rate limit).
    /// `planned_on` becomes the list the plan was made against (the audit's previous
    /// value).
    pub(crate) async fn decide_timer(
        &self,
        sn: &str,
        request: &SetRequest,
        timer: TimerRequest,
        planned_on: &mut Option<Arc<[TimerTask]>>,
    ) -> SetOutcome {
        let limits = match self.grid_charge_limits(sn, request) {
            Ok(limits) => limits,
            Err(e) => return refused(e.to_string()),
        };
        if self.config.dry_run {
            // The recipe's frames, whatever the device reports now: the same words print
            // the same frames (a live write may skip those the read-back already shows).
            let writes = request.timer_writes();
            let seq = sources::seq_now();
            let frames: Vec<String> = writes
                .iter()
                .enumerate()
                .map(|(i, w)| hex(&protocol::timer::encode_write(w, sn, seq + i as i32)))
                .collect();
            return SetOutcome::DryRun {
                frame_hex: frames.join(" "),
            };
        }
        if !self.config.enabled {
            return refused("control is off ([control] enabled = false)");
        }
        if self.store.device(sn).is_none() {
            return refused(format!("unknown device {sn} (it has not reported yet)"));
        }
        if let Some(newer) = self.coalesce(sn, request).await {
            return newer;
        }
        let Some(source) = self.source() else {
            return refused("no source is connected to send the frame");
        };
        let mut events = self.store.subscribe();
        let Some(tasks) = self.tasks(sn, &source, &mut events).await else {
            return SetOutcome::NotApplied {
                reason: format!(
                    "the device did not report its timer tasks (96/10, 96/127) within {}: nothing sent",
                    humantime::format_duration(self.config.confirm_timeout)
                ),
            };
        };
        *planned_on = Some(tasks.clone());
        let plan = match timer.plan(&tasks, &limits) {
            Ok(plan) => plan,
            Err(e) => return refused(e.to_string()),
        };
        for write in plan.frames {
            if let Some(refusal) = self.take_rate_slot(sn) {
                return refusal;
            }
            if let Err(reason) = source.publish_timer(sn, write.clone()).await {
                return refused(reason);
            }
            self.count_frame();
            if !self.confirm_write(sn, &write, &source, &mut events).await {
                return SetOutcome::NotApplied {
                    reason: format!(
                        "the device's timer tasks do not show the {} of task {} after {}",
                        write.recipe().as_str(),
                        write.index(),
                        humantime::format_duration(self.config.confirm_timeout)
                    ),
                };
            }
        }
        match self.store.timer_tasks(sn) {
            Some(tasks) if request.applied_in_tasks(&tasks) => SetOutcome::Applied,
            _ => SetOutcome::NotApplied {
                reason: "the device's timer tasks show another grid charge".into(),
            },
        }
    }

    /// The configured maximum and the packs online now; an `off` needs neither.
    fn grid_charge_limits(
        &self,
        sn: &str,
        request: &SetRequest,
    ) -> Result<GridChargeLimits, SetError> {
        let max_w = self.config.grid_charge_max_w;
        if let SetRequest::GridChargeOff = request {
            return Ok(GridChargeLimits {
                online_packs: 0,
                max_w: max_w.unwrap_or(0),
            });
        }
        let max_w = max_w.ok_or(SetError::NoGridChargeMax)?;
        // A dry run may come before the device reported: then one pack, the least.
        let online_packs = self.store.device(sn).map_or(1, |d| d.packs.len() as u32);
        Ok(GridChargeLimits {
            online_packs,
            max_w,
        })
    }

    /// The device's list: the one it last reported, or the answer to a 96/127 request.
    async fn tasks(
        &self,
        sn: &str,
        source: &SourceHandle,
        events: &mut Receiver<Arc<StoreEvent>>,
    ) -> Option<Arc<[TimerTask]>> {
        if let Some(tasks) = self.store.timer_tasks(sn) {
            return Some(tasks);
        }
        source.timer_list(sn);
        self.wait_tasks(sn, source, events, |_| true).await
    }

    /// Until a list shows `write` (re-asking every few seconds), within `confirm_timeout`.
    async fn confirm_write(
        &self,
        sn: &str,
        write: &TimerWrite,
        source: &SourceHandle,
        events: &mut Receiver<Arc<StoreEvent>>,
    ) -> bool {
        self.wait_tasks(sn, source, events, |tasks| write.applied_in(tasks))
            .await
            .is_some()
    }

    async fn wait_tasks(
        &self,
        sn: &str,
        source: &SourceHandle,
        events: &mut Receiver<Arc<StoreEvent>>,
        wanted: impl Fn(&[TimerTask]) -> bool,
    ) -> Option<Arc<[TimerTask]>> {
        let deadline = Instant::now() + self.config.confirm_timeout;
        let mut next_ask = Instant::now() + GET_ALL_EVERY;
        loop {
            let event = tokio::select! {
                e = events.recv() => e,
                _ = tokio::time::sleep_until(next_ask) => {
                    source.timer_list(sn);
                    next_ask += GET_ALL_EVERY;
                    continue;
                }
                _ = tokio::time::sleep_until(deadline) => return None,
            };
            match event {
                Ok(e) => {
                    if let StoreEvent::TimerTasks { device_sn, tasks } = &*e
                        && &**device_sn == sn
                        && wanted(tasks)
                    {
                        return Some(tasks.clone());
                    }
                }
                // Missed events: the store's list is the latest word.
                Err(RecvError::Lagged(_)) => {
                    if let Some(tasks) = self.store.timer_tasks(sn).filter(|t| wanted(t)) {
                        return Some(tasks);
                    }
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
