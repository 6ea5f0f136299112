//! The checks that plan a request's frames (protocol §12): power in steps, per pack and
//! within the caller's limit, the echo of what is unchanged, the re-arm after a full
//! write, and nothing sent for what the read-back already shows.

use super::*;
use crate::timer::tests::captured;

fn limits() -> GridChargeLimits {
    GridChargeLimits {
        online_packs: 2,
        max_w: 5000,
    }
}

#[test]
fn power_is_checked_in_steps_per_pack_and_against_the_callers_limit() {
    let l = limits();
    assert_eq!(l.check(1500), Ok(()));
    assert_eq!(l.check(200), Ok(()));
    assert_eq!(l.check(5000), Ok(()));
    assert_eq!(
        l.check(1550),
        Err(TimerError::PowerNotInSteps { power_w: 1550 })
    );
    assert_eq!(
        l.check(100),
        Err(TimerError::PowerBelowMinimum {
            power_w: 100,
            min_w: 200,
            packs: 2
        })
    );
    assert_eq!(
        l.check(0).unwrap_err().to_string(),
        "grid-charge power must be at least 200 W (100 W for each of 2 online packs), got 0 W"
    );
    assert_eq!(
        l.check(5100),
        Err(TimerError::PowerAboveMaximum {
            power_w: 5100,
            max_w: 5000
        })
    );
    let none = GridChargeLimits {
        online_packs: 0,
        ..l
    };
    assert_eq!(none.check(1000), Err(TimerError::NoPackOnline));
}

fn change(index: u32, change: TaskChange) -> TimerRequest {
    TimerRequest::Change { index, change }
}

#[test]
fn a_change_echoes_the_rest_and_rearms_in_a_second_frame() {
    let tasks = [captured()];
    // 1000 W, kept armed: the full write (captured values echoed), then the arm.
    let plan = change(
        1,
        TaskChange {
            power_w: Some(1000),
            ..TaskChange::default()
        },
    )
    .plan(&tasks, &limits())
    .unwrap();
    let full = TimerWrite::Change {
        index: 1,
        kind: TaskKind::ChargeFromGrid,
        power_w: 1000,
        repeat: tasks[0].repeat,
        windows: tasks[0].windows.clone(),
    };
    assert_eq!(plan.frames, [full.clone(), TimerWrite::Arm { index: 1 }]);
    // Each frame is confirmed by the read-back: the write shows (with the flag cleared),
    // then the arm.
    let after_write = [TimerTask {
        power_w: 1000,
        armed: false,
        ..tasks[0].clone()
    }];
    assert!(full.applied_in(&after_write) && !plan.frames[1].applied_in(&after_write));
    assert!(!full.applied_in(&tasks));
    // A new daily window, left disarmed: one frame.
    let plan = change(
        1,
        TaskChange {
            window: Some("22:00-05:30".parse().unwrap()),
            repeat: Some(Repeat::Daily),
            armed: Some(false),
            ..TaskChange::default()
        },
    )
    .plan(&tasks, &limits())
    .unwrap();
    assert_eq!(
        plan.frames,
        [TimerWrite::Change {
            index: 1,
            kind: TaskKind::ChargeFromGrid,
            power_w: 1500,
            repeat: Repeat::Daily,
            windows: vec![Window::new(1320, 330)],
        }]
    );
    // What the read-back already shows plans nothing; only the flag: one frame.
    let same = TaskChange {
        power_w: Some(1500),
        ..TaskChange::default()
    };
    assert!(change(1, same).plan(&tasks, &limits()).unwrap().is_empty());
    let off = TaskChange {
        armed: Some(false),
        ..same
    };
    assert_eq!(
        change(1, off).plan(&tasks, &limits()).unwrap().frames,
        [TimerWrite::Disarm { index: 1 }]
    );
}

#[test]
fn arm_and_disarm_plan_one_frame_or_none() {
    let armed = [captured()];
    let disarmed = [TimerTask {
        armed: false,
        ..captured()
    }];
    let plan = |r: TimerRequest, tasks: &[TimerTask]| r.plan(tasks, &limits()).unwrap().frames;
    assert_eq!(
        plan(TimerRequest::Arm { index: 1 }, &disarmed),
        [TimerWrite::Arm { index: 1 }]
    );
    assert!(plan(TimerRequest::Arm { index: 1 }, &armed).is_empty());
    assert_eq!(
        plan(TimerRequest::Disarm { index: 1 }, &armed),
        [TimerWrite::Disarm { index: 1 }]
    );
    assert!(plan(TimerRequest::Disarm { index: 1 }, &disarmed).is_empty());
    assert!(TimerWrite::Disarm { index: 1 }.applied_in(&disarmed));
    assert!(
        !TimerWrite::Arm { index: 2 }.applied_in(&armed),
        "no slot 2"
    );
}

#[test]
fn requests_the_rules_refuse() {
    let tasks = [captured()];
    let unset = [TimerTask {
        index: 1,
        armed: false,
        running: false,
        kind: TaskKind::Other(0),
        power_w: 0,
        repeat: Repeat::Unknown { mode: 0, param: 0 },
        windows: vec![Window::from_raw(0)],
        cfg: Some(2),
        role: None,
    }];
    let app_task = [TimerTask {
        kind: TaskKind::Other(7),
        ..captured()
    }];
    let with = |c: TaskChange| change(1, c);
    let power = |w| TaskChange {
        power_w: Some(w),
        ..TaskChange::default()
    };
    let cases: [(TimerRequest, &[TimerTask], TimerError); 9] = [
        (
            TimerRequest::Arm { index: 2 },
            &tasks,
            TimerError::UnknownSlot { index: 2 },
        ),
        (
            TimerRequest::Arm { index: 1 },
            &unset,
            TimerError::NoWindow { index: 1 },
        ),
        (with(power(1000)), &unset, TimerError::NoWindow { index: 1 }),
        (
            with(TaskChange {
                window: Some(Window::new(60, 120)),
                ..TaskChange::default()
            }),
            &unset,
            TimerError::NoPower { index: 1 },
        ),
        (
            with(power(1000)),
            &app_task,
            TimerError::NotGridCharge {
                index: 1,
                kind: TaskKind::Other(7),
            },
        ),
        (
            with(power(1250)),
            &tasks,
            TimerError::PowerNotInSteps { power_w: 1250 },
        ),
        (
            with(TaskChange {
                window: Some(Window::new(60, 60)),
                ..TaskChange::default()
            }),
            &tasks,
            TimerError::EmptyWindow,
        ),
        (
            with(TaskChange {
                repeat: Some(Repeat::Unknown { mode: 70, param: 0 }),
                ..TaskChange::default()
            }),
            &tasks,
            TimerError::UnwritableRepeat,
        ),
        (
            with(TaskChange::default()),
            &tasks,
            TimerError::NothingToChange,
        ),
    ];
    for (i, (request, tasks, want)) in cases.into_iter().enumerate() {
        assert_eq!(request.plan(tasks, &limits()), Err(want), "case {i}");
    }
    // An unset slot with a power and a window becomes a grid charge.
    let plan = with(TaskChange {
        power_w: Some(600),
        window: Some(Window::new(60, 120)),
        repeat: Some(Repeat::Daily),
        armed: Some(true),
    })
    .plan(&unset, &limits())
    .unwrap();
    assert!(matches!(
        plan.frames.as_slice(),
        [
            TimerWrite::Change {
                kind: TaskKind::ChargeFromGrid,
                power_w: 600,
                ..
            },
            TimerWrite::Arm { index: 1 }
        ]
    ));
}
