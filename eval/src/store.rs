//! Fact storage for one tick: per relation an append-only list of distinct tuples (a tuple's
//! id is its position), a set for membership, and hash indexes on the column sets the join
//! plans look up by, kept up to date as facts are appended.
//!
//! Which indexes a relation has is decided once per program (see [`crate::plan`]); a store
//! never builds an index on demand, so every store of a relation has the same index numbers.

use crate::hash::FastMap;
use std::sync::Arc;

use graft_compiler::ir::Value;

/// A fact's values; column 0 is its location.
pub type Tuple = Arc<[Value]>;

/// A hash index on some columns: key values (in the order of `columns`) to the ids of the
/// tuples with those values, ascending.
#[derive(Clone, Debug)]
pub(crate) struct Index {
    columns: Vec<usize>,
    map: FastMap<Vec<Value>, Vec<u32>>,
}

impl Index {
    fn new(columns: Vec<usize>) -> Index {
        Index {
            columns,
            map: FastMap::default(),
        }
    }

    fn add(&mut self, tuple: &[Value], id: u32) {
        let key: Vec<Value> = self
            .columns
            .iter()
            .map(|column| tuple[*column].clone())
            .collect();
        self.map.entry(key).or_default().push(id);
    }

    /// The ids of the tuples whose indexed columns equal `key`, ascending.
    pub(crate) fn get(&self, key: &[Value]) -> &[u32] {
        self.map.get(key).map_or(&[], Vec::as_slice)
    }
}

/// The facts of one relation at one tick.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    pub(crate) list: Vec<Tuple>,
    set: FastMap<Tuple, u32>,
    indexes: Vec<Index>,
}

impl Store {
    /// An empty store with indexes on each of `index_columns`.
    pub(crate) fn new(index_columns: &[Vec<usize>]) -> Store {
        Store {
            list: Vec::new(),
            set: FastMap::default(),
            indexes: index_columns.iter().cloned().map(Index::new).collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Appends `tuple` unless present. Returns its id and whether it is new.
    pub(crate) fn insert(&mut self, tuple: Tuple) -> (u32, bool) {
        if let Some(id) = self.set.get(&tuple) {
            return (*id, false);
        }
        let id = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
        for index in &mut self.indexes {
            index.add(&tuple, id);
        }
        self.set.insert(tuple.clone(), id);
        self.list.push(tuple);
        (id, true)
    }

    pub(crate) fn id_of(&self, tuple: &[Value]) -> Option<u32> {
        self.set.get(tuple).copied()
    }

    pub(crate) fn index(&self, number: usize) -> Option<&Index> {
        self.indexes.get(number)
    }

    /// The tuple with id `id`.
    pub(crate) fn get(&self, id: u32) -> Option<&Tuple> {
        self.list.get(id as usize)
    }

    /// Consumes the store, keeping the tuples (and, when `keep_set`, the value-to-id map).
    pub(crate) fn into_parts(self, keep_set: bool) -> (Vec<Tuple>, Option<FastMap<Tuple, u32>>) {
        (self.list, keep_set.then_some(self.set))
    }
}
