//! The settings side of a device (protocol §10): it takes a set frame from its `set`
//! topic (unless it is offline or switched to ignore sets; a §12 timer-task frame goes
//! on to `timer`), and reports its settings in a
//! 96/8 `EmsChangeReport` — XOR-ed like every report — on every change (on the property
//! topic) and in every get-all answer.

use protocol::FrameSpec;
use protocol::control::{CMD_FUNC, SETTINGS_REPORT_CMD_ID};

use super::Device;
use crate::sets::{self, Command, Ignored};

impl Device {
    /// A payload on `set` that is not a 96/97 frame: applied, answered, or counted as
    /// ignored. `user_id` names the account whose `set_reply` a list request is answered on.
    pub(super) async fn on_set(&mut self, user_id: &str, payload: &[u8]) {
        let command = match sets::parse(payload, self.sn(), self.feed_in_at_101_only) {
            // A read, not a set: answered unless offline, whether sets are ignored or not.
            Ok(Command::TimerList { seq }) => return self.answer_timer_list(user_id, seq).await,
            Ok(_) if !self.running => Err(Ignored::Offline),
            Ok(_) if self.ignore_sets => Err(Ignored::IgnoringSets),
            other => other,
        };
        match command {
            Ok(Command::Set(request)) => {
                let now = self.clock.now();
                {
                    let mut model = self.view.shared.model();
                    model.advance_to(now);
                    model.apply_set(&request);
                }
                self.field_log.set_frame(self.sn(), None);
                self.report_settings_change().await;
            }
            Ok(Command::TimerWrite(frame)) => self.on_timer_write(&frame).await,
            Ok(Command::TimerList { .. }) => {}
            Err(why) => self.field_log.set_frame(self.sn(), Some(why)),
        }
    }

    /// Switches ignoring sets on or off (`Faults::ignore_sets`).
    pub(super) fn set_ignoring(&mut self, ignore: bool) {
        self.ignore_sets = ignore;
        self.field_log.ignoring_sets(self.sn(), ignore);
    }

    /// Reports 96/8 on the property topic when the settings changed since the last report
    /// (a set, or the device raising a too-low reserve by itself).
    pub(super) async fn report_settings_change(&mut self) {
        let revision = self.view.shared.model().controls().revision();
        if revision != self.settings_reported && self.running {
            self.settings_reported = revision;
            let topic = protocol::topics::property_topic(self.sn());
            let payload = self.settings_payload();
            self.send(topic, payload, 1).await;
        }
    }

    /// A one-frame payload with the 96/8 report of the current settings.
    pub(super) fn settings_payload(&mut self) -> Vec<u8> {
        let pdata = self
            .view
            .shared
            .model()
            .controls()
            .settings
            .report()
            .encode();
        let seq = self.next_seq();
        protocol::encode_frames(vec![FrameSpec {
            cmd_func: CMD_FUNC,
            cmd_id: SETTINGS_REPORT_CMD_ID,
            pdata,
            device_sn: Some(self.sn().to_string()),
            seq,
            src: 2,
            xor: self.xor,
        }])
    }
}
