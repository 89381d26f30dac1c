//! Walking a document's tasks: every task, recursively and in document order, with the JSON
//! pointer of where it is written and the list its `then` targets are in.

use super::task::{Task, TaskList};

/// One task met while walking a document, with where it sits.
#[derive(Debug, Clone)]
pub struct TaskVisit<'a> {
    /// The JSON pointer of the task object, e.g. `/do/0/greet` (after the base pointer given).
    pub pointer: String,
    /// The task's name.
    pub name: &'a str,
    /// The task.
    pub task: &'a Task,
    /// The list the task is in (the scope of its `then` targets).
    pub siblings: &'a TaskList,
}

/// The list a task outside any list (a function in `use.functions`) is given as its siblings.
pub(crate) static NO_SIBLINGS: TaskList = TaskList(Vec::new());

impl<'a> TaskVisit<'a> {
    /// Visits this task, then the lists nested in it, recursively.
    pub(crate) fn walk(self, visit: &mut dyn FnMut(&TaskVisit<'a>)) {
        visit(&self);
        for (suffix, list) in self.task.subtasks() {
            list.walk_at(&format!("{}{suffix}", self.pointer), visit);
        }
    }
}

impl TaskList {
    /// Visits every task recursively, in document order, treating this list as the `do` of the
    /// object at `base_pointer`: the first task's pointer is `{base_pointer}/do/0/{name}`.
    ///
    /// Nested lists are walked right after the task holding them: `do`, `for.do`,
    /// `fork.branches`, `try.try`, `try.catch.do`, `listen.foreach.do` and `call: asyncapi`
    /// `with.subscription.foreach.do`. Names are escaped per RFC 6901 (`~` → `~0`, `/` → `~1`).
    pub fn walk<'a>(&'a self, base_pointer: &str, visit: &mut dyn FnMut(&TaskVisit<'a>)) {
        self.walk_at(&format!("{base_pointer}/do"), visit);
    }

    /// Like [`walk`](Self::walk), but `list_pointer` is the pointer of this list itself (for
    /// lists not under `do`, e.g. `/use/extensions/0/log/before`).
    pub fn walk_at<'a>(&'a self, list_pointer: &str, visit: &mut dyn FnMut(&TaskVisit<'a>)) {
        for (index, item) in self.0.iter().enumerate() {
            let pointer = format!("{list_pointer}/{index}/{}", crate::model::escape_pointer(&item.name));
            TaskVisit { pointer, name: &item.name, task: &item.task, siblings: self }.walk(visit);
        }
    }
}
