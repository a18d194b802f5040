//! The vocabulary every layer shares about a run's containers: the series of one container name
//! grouped across the workload's pods (`ContainerGroup`, in the order the run lists them), the
//! group's peak, limits and requests, and the allowed peak (`limit × (1 − headroom)`) the judge
//! compares with and every report shows. Plain functions over the model; nothing here judges.

use super::{ContainerSeries, PeakSource, Run, Timestamp};

/// The highest working set a container may reach: `limit × (1 − headroom)`, floored to bytes.
pub fn allowed_peak(limit: u64, headroom: f64) -> u64 {
    let exact = limit as f64 * (1.0 - headroom.clamp(0.0, 1.0));
    // Absorb the rounding error of the multiplication before flooring (1 GiB × 0.8 stays
    // 858993459; 1000 × 0.8 stays 800, not 799).
    let nearest = exact.round();
    let value = if (exact - nearest).abs() <= nearest.max(1.0) * 1e-12 {
        nearest
    } else {
        exact.floor()
    };
    (value as u64).min(limit)
}

/// Every series of one container name, across the pods of the workload.
#[derive(Debug, Clone)]
pub struct ContainerGroup<'a> {
    pub name: &'a str,
    pub series: Vec<&'a ContainerSeries>,
}

/// The highest working set of a container name across its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupPeak<'a> {
    pub bytes: u64,
    pub at: Timestamp,
    pub source: PeakSource,
    pub pod: &'a str,
}

impl<'a> ContainerGroup<'a> {
    /// Distinct pod names, in the order the run lists them.
    pub fn pods(&self) -> Vec<&'a str> {
        let mut pods: Vec<&str> = Vec::new();
        for s in &self.series {
            if !pods.contains(&s.pod.as_str()) {
                pods.push(&s.pod);
            }
        }
        pods
    }

    /// The smallest memory limit among the pods that have one.
    pub fn limit(&self) -> Option<u64> {
        self.series.iter().filter_map(|s| s.limit).min()
    }

    /// The smallest and largest limit, when the pods disagree (a rollout in progress).
    pub fn limit_spread(&self) -> Option<(u64, u64)> {
        let min = self.series.iter().filter_map(|s| s.limit).min()?;
        let max = self.series.iter().filter_map(|s| s.limit).max()?;
        (min != max).then_some((min, max))
    }

    /// Pods whose copy of the container has no memory limit.
    pub fn unlimited_pods(&self) -> Vec<&'a str> {
        let mut pods: Vec<&str> = Vec::new();
        for s in self.series.iter().filter(|s| s.limit.is_none()) {
            if !pods.contains(&s.pod.as_str()) {
                pods.push(&s.pod);
            }
        }
        pods
    }

    /// The smallest memory request among the pods that have one.
    pub fn request(&self) -> Option<u64> {
        self.series.iter().filter_map(|s| s.request).min()
    }

    /// Samples across all pods.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    /// The highest peak across the pods (the earliest one on a tie).
    pub fn peak(&self) -> Option<GroupPeak<'a>> {
        self.series
            .iter()
            .filter_map(|s| {
                s.peak().map(|(bytes, at, source)| GroupPeak {
                    bytes,
                    at,
                    source,
                    pod: s.pod.as_str(),
                })
            })
            .max_by_key(|p| (p.bytes, std::cmp::Reverse(p.at)))
    }
}

/// The run's series grouped by container name, in the order names first appear.
pub fn group_containers(run: &Run) -> Vec<ContainerGroup<'_>> {
    let mut groups: Vec<ContainerGroup<'_>> = Vec::new();
    for s in &run.containers {
        match groups.iter_mut().find(|g| g.name == s.container) {
            Some(g) => g.series.push(s),
            None => groups.push(ContainerGroup {
                name: &s.container,
                series: vec![s],
            }),
        }
    }
    groups
}
