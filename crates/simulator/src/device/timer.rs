//! The timer-task side of a device (protocol §12): it takes a 96/125 write from its
//! `set` topic following the device's rules (`physics::timer`), pushes its list as 96/10
//! on the property topic after every write it takes and whenever a task starts or ends,
//! and answers a 96/127 request on `set_reply` under the request's seq — with the list
//! twice, the current one first and a stale copy second, unless `field.timer_list_twice`
//! is off. Its frames are XOR-ed like every report.

use protocol::FrameSpec;
use protocol::control::CMD_FUNC;
use protocol::pb::EmsTimerTaskCfg;
use protocol::timer::{self, GET_ALL_CMD_ID, PUSH_CMD_ID, TimerTask};

use super::Device;
use crate::sets::Ignored;

impl Device {
    /// A timer-task write (the device is online and takes sets).
    pub(super) async fn on_timer_write(&mut self, frame: &EmsTimerTaskCfg) {
        let now = self.clock.now();
        let outcome = {
            let mut model = self.view.shared.model();
            model.advance_to(now);
            model.apply_timer_write(frame)
        };
        self.field_log.timer_write(self.sn(), outcome);
        let ignored = match outcome {
            Ok(kind) if kind.takes_effect() => None,
            Ok(_) => Some(Ignored::NoEffect),
            Err(_) => Some(Ignored::BadValue),
        };
        self.field_log.set_frame(self.sn(), ignored);
        if ignored.is_none() {
            self.push_timer_tasks().await;
        }
    }

    /// Pushes 96/10 when the list changed since the last push (a task started or ended).
    pub(super) async fn report_timer_change(&mut self) {
        let revision = self.view.shared.model().timers().revision();
        if revision != self.timers_reported && self.running {
            self.push_timer_tasks().await;
        }
    }

    async fn push_timer_tasks(&mut self) {
        let (revision, tasks) = {
            let model = self.view.shared.model();
            (model.timers().revision(), model.timers().tasks().to_vec())
        };
        self.timers_reported = revision;
        let seq = self.next_seq();
        let payload = protocol::encode_frames(vec![self.list_frame(PUSH_CMD_ID, seq, &tasks)]);
        self.send(protocol::topics::property_topic(self.sn()), payload, 1)
            .await;
    }

    /// Answers a 96/127 request (counted even when offline, then unanswered).
    pub(super) async fn answer_timer_list(&mut self, user_id: &str, seq: i32) {
        self.field_log.timer_list_request(self.sn());
        if !self.running {
            return;
        }
        let (current, stale) = {
            let model = self.view.shared.model();
            let timers = model.timers();
            (timers.tasks().to_vec(), timers.previous().to_vec())
        };
        let mut frames = vec![self.list_frame(GET_ALL_CMD_ID, seq, &current)];
        if self.timer_list_twice {
            frames.push(self.list_frame(GET_ALL_CMD_ID, seq, &stale));
        }
        let count = frames.len() as u64;
        // The answer to a command on `set` comes on `set_reply` (protocol §2).
        let topic = format!("/app/{user_id}/{}/thing/property/set_reply", self.sn());
        self.send(topic, protocol::encode_frames(frames), count)
            .await;
    }

    fn list_frame(&self, cmd_id: i32, seq: i32, tasks: &[TimerTask]) -> FrameSpec {
        FrameSpec {
            cmd_func: CMD_FUNC,
            cmd_id,
            pdata: timer::encode_list(tasks),
            device_sn: Some(self.sn().to_string()),
            seq,
            src: 2,
            xor: self.xor,
        }
    }
}
