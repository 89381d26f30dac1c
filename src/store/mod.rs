//! The stores behind the backend contract, each a [`crate::backend::Storage`]: [`redb`], a file
//! (the local store, and a server's org stores in its data directory).

pub mod redb;
