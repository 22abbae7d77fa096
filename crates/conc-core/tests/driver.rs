//! Tasks and the driver contract, checked against a reference driver.

use std::sync::mpsc;
use std::thread;

use conc_core::BoxFuture;
use conc_core::driver::{Driver, Task, TaskError, TaskOutput, downcast_output};
use futures::executor::block_on;

/// A reference driver: each local task on its own thread, portable tasks refused.
#[derive(Debug)]
struct ThreadPerTask;

impl Driver for ThreadPerTask {
    fn name(&self) -> &'static str {
        "thread-per-task"
    }

    fn run(&self, tasks: Vec<Task>) -> BoxFuture<'_, Vec<Result<TaskOutput, TaskError>>> {
        Box::pin(async move {
            let receivers: Vec<_> = tasks
                .into_iter()
                .map(|task| {
                    let (tx, rx) = mpsc::channel();
                    thread::spawn(move || tx.send(task.run_local()));
                    rx
                })
                .collect();
            receivers.into_iter().map(|rx| rx.recv().unwrap_or(Err(TaskError::Cancelled))).collect()
        })
    }
}

#[test]
fn results_come_back_in_input_order_whatever_order_tasks_finish_in() {
    let tasks: Vec<_> = (0..16u64)
        .map(|i| {
            Task::new(move || {
                thread::sleep(std::time::Duration::from_millis(16 - i));
                i * 10
            })
        })
        .collect();
    let results = block_on(ThreadPerTask.run(tasks));
    let outputs: Vec<u64> =
        results.into_iter().map(|r| downcast_output::<u64>(r.unwrap()).unwrap()).collect();
    assert_eq!(outputs, (0..16).map(|i| i * 10).collect::<Vec<_>>());
}

#[test]
fn a_panic_fills_its_own_slot_only() {
    let tasks = vec![
        Task::new(|| "ok"),
        Task::new(|| -> &str { panic!("{} rows rejected", 3) }),
        Task::portable("resize", vec![1, 2, 3]),
        Task::new(|| "also ok"),
    ];
    let results = block_on(ThreadPerTask.run(tasks));
    assert_eq!(results.len(), 4);
    let mut results = results.into_iter();
    assert_eq!(downcast_output::<&str>(results.next().unwrap().unwrap()).unwrap(), "ok");
    let panicked = results.next().unwrap().unwrap_err();
    assert!(matches!(&panicked, TaskError::Panicked { message } if message == "3 rows rejected"));
    assert_eq!(panicked.to_string(), "task panicked: 3 rows rejected");
    let unsupported = results.next().unwrap().unwrap_err();
    assert!(matches!(unsupported, TaskError::Unsupported { .. }));
    assert!(unsupported.to_string().contains("`resize`"), "{unsupported}");
    assert_eq!(downcast_output::<&str>(results.next().unwrap().unwrap()).unwrap(), "also ok");
}

#[test]
fn portable_tasks_keep_handler_and_input() {
    let task = Task::portable("thumbnail", b"7".to_vec()).with_label("thumb-7");
    assert!(task.is_portable());
    assert_eq!(task.label(), Some("thumb-7"));
    let portable = task.into_portable().unwrap();
    assert_eq!(portable.clone().into_parts(), ("thumbnail".to_owned(), b"7".to_vec()));

    let local = Task::new(|| 1).with_label(String::from("one"));
    assert!(local.as_portable().is_none());
    let back = local.into_portable().unwrap_err();
    assert_eq!(back.label(), Some("one"), "a local task is handed back intact");
    assert_eq!(downcast_output::<i32>(back.run_local().unwrap()).unwrap(), 1);
}

#[test]
fn downcast_names_the_expected_type() {
    let output = Task::new(|| 5u8).run_local().unwrap();
    let err = downcast_output::<String>(output).unwrap_err();
    assert_eq!(err.to_string(), "task output is not a `alloc::string::String`");
}

#[test]
fn non_string_panic_payloads_are_described() {
    let err = Task::new(|| std::panic::panic_any(17u32)).run_local().unwrap_err();
    assert!(
        matches!(err, TaskError::Panicked { message } if message == "panic with a non-string payload")
    );
}

#[test]
fn debug_shows_label_and_kind() {
    let task = Task::new(|| ()).with_label("tidy");
    assert_eq!(format!("{task:?}"), r#"Task { label: Some("tidy"), body: Local(..) }"#);
    assert_eq!(ThreadPerTask.name(), "thread-per-task");
}
