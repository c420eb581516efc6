//! The embedding example runs to the end (both its jobs complete), not only compiles.

#[path = "../examples/hello_task.rs"]
mod hello_task;

#[test]
fn the_embedding_example_runs_its_jobs_to_completion() {
    hello_task::main().expect("the example runs");
}
