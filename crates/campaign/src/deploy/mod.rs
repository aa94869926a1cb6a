//! The Redis topologies the campaign runs against, and the faults it injects into them.
