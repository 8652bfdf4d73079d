//! What a Service asks for: families, specific addresses, a pool, a sharing key.

use std::net::IpAddr;

use lb_core::addr::Family;
use lb_core::service::{IpFamilyPolicy, Service, annotation};

use crate::AllocError;

/// Which families a Service wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Families {
    Single(Family),
    /// Both, primary first; `required` for RequireDualStack.
    Dual {
        primary: Family,
        required: bool,
    },
}

impl Families {
    pub fn of(service: &Service) -> Self {
        let primary = service.primary_family();
        match service.ip_family_policy.unwrap_or_default() {
            IpFamilyPolicy::SingleStack => Families::Single(primary),
            IpFamilyPolicy::PreferDualStack => Families::Dual { primary, required: false },
            IpFamilyPolicy::RequireDualStack => Families::Dual { primary, required: true },
        }
    }

    /// For error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Families::Single(Family::V4) => "SingleStack IPv4",
            Families::Single(Family::V6) => "SingleStack IPv6",
            Families::Dual { required: true, .. } => "RequireDualStack: one IPv4 and one IPv6",
            Families::Dual { required: false, .. } => "PreferDualStack: at most one of each family",
        }
    }

    /// Whether `ips` (at most one per family) is an acceptable set for these families.
    pub fn accepts(self, ips: &[IpAddr]) -> bool {
        match (self, ips) {
            (Families::Single(f), [ip]) => Family::of(*ip) == f,
            (Families::Dual { .. }, [a, b]) => Family::of(*a) != Family::of(*b),
            (Families::Dual { required: false, .. }, [_]) => true,
            _ => false,
        }
    }
}

/// Whether the Service asks for specific addresses (`spec.loadBalancerIP`
/// or a non-blank `loadBalancerIPs` annotation), valid or not: such
/// Services are allocated before the ones that take any address, so what
/// they ask for is still free. Cheaper than [`Request::of`]: it parses nothing.
pub fn requests_addresses(service: &Service) -> bool {
    service.load_balancer_ip.as_deref().is_some_and(|ip| !ip.trim().is_empty())
        || service.annotation(annotation::LOAD_BALANCER_IPS).is_some_and(|list| !list.trim().is_empty())
}

/// The allocation-relevant reading of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub families: Families,
    /// Specific addresses, at most one per family, primary family first.
    pub addresses: Vec<IpAddr>,
    pub pool: Option<&'a str>,
    pub sharing_key: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// Reads the request; errors are the Service's own mistakes.
    #[inline]
    pub fn of(service: &'a Service) -> Result<Self, AllocError> {
        let families = Families::of(service);
        // Most Services ask for nothing in particular: inlined, this path
        // costs a few instructions and no copy of a large result.
        if service.annotations.is_empty() && service.load_balancer_ip.is_none() {
            return Ok(Self { families, addresses: Vec::new(), pool: None, sharing_key: None });
        }
        Self::of_annotated(service, families)
    }

    #[inline(never)]
    fn of_annotated(service: &'a Service, families: Families) -> Result<Self, AllocError> {
        let annotated = service.annotation(annotation::LOAD_BALANCER_IPS).filter(|s| !s.trim().is_empty());
        let parse =
            |text: &str| text.parse::<IpAddr>().map_err(|_| AllocError::InvalidRequestedIp { text: text.into() });
        let mut addresses = match (annotated, service.load_balancer_ip.as_deref()) {
            (Some(_), Some(_)) => return Err(AllocError::BothRequestForms),
            (Some(list), None) => {
                list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(parse).collect::<Result<Vec<_>, _>>()?
            }
            // `spec.loadBalancerIP` holds one address, never a list.
            (None, Some(one)) => vec![parse(one.trim())?],
            (None, None) => Vec::new(),
        };
        if addresses.len() > 2 {
            return Err(AllocError::TooManyRequestedIps { count: addresses.len() });
        }
        if let [a, b] = addresses[..]
            && Family::of(a) == Family::of(b)
        {
            return Err(AllocError::SameFamilyTwice { family: Family::of(a) });
        }
        if !addresses.is_empty() && !families.accepts(&addresses) {
            return Err(AllocError::FamilyMismatch { requested: addresses, wanted: families.describe() });
        }
        let primary = service.primary_family();
        addresses.sort_by_key(|ip| Family::of(*ip) != primary);
        Ok(Self { families, addresses, pool: service.requested_pool(), sharing_key: service.sharing_key() })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn svc(policy: Option<IpFamilyPolicy>, lb_ip: Option<&str>, annotation: Option<&str>) -> Service {
        let mut s = Service::new("ns", "s");
        s.ip_family_policy = policy;
        s.load_balancer_ip = lb_ip.map(Into::into);
        if let Some(a) = annotation {
            s.annotations.insert("metallb.io/loadBalancerIPs".into(), a.into());
        }
        s
    }

    #[test]
    fn requested_addresses() {
        let r = svc(None, Some("192.0.2.1"), None);
        assert_eq!(Request::of(&r).unwrap().addresses, vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
        let both = svc(None, Some("192.0.2.1"), Some("192.0.2.1"));
        assert_eq!(Request::of(&both), Err(AllocError::BothRequestForms));
        let bad = svc(None, None, Some("192.0.2.1, nope"));
        assert!(matches!(Request::of(&bad), Err(AllocError::InvalidRequestedIp { .. })));
        let same = svc(Some(IpFamilyPolicy::RequireDualStack), None, Some("192.0.2.1,192.0.2.2"));
        assert!(matches!(Request::of(&same), Err(AllocError::SameFamilyTwice { .. })));
        let v6_for_v4 = svc(None, None, Some("2001:db8::1"));
        assert!(matches!(Request::of(&v6_for_v4), Err(AllocError::FamilyMismatch { .. })));
        let dual = svc(Some(IpFamilyPolicy::RequireDualStack), None, Some("2001:db8::1, 192.0.2.1"));
        assert_eq!(Request::of(&dual).unwrap().addresses[0].to_string(), "192.0.2.1");
        let dual_one = svc(Some(IpFamilyPolicy::RequireDualStack), None, Some("192.0.2.1"));
        assert!(matches!(Request::of(&dual_one), Err(AllocError::FamilyMismatch { .. })));
        let prefer_one = svc(Some(IpFamilyPolicy::PreferDualStack), None, Some("2001:db8::1"));
        assert!(Request::of(&prefer_one).is_ok());
    }
}
