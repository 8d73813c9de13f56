//! The abstract machine a procedure runs on: the component selection, per-component
//! parameters, soft-failure and nesting, and the commands (conditions, directives) it executes.

use super::{MAX_NESTING, TAG_CBOR_PEN};
use crate::cbor::{MAJOR_ARRAY, MAJOR_TAG, MAJOR_UINT, Reader};
use crate::command::{Command, Condition, Directive, Parameter, Section};
use crate::digest::SuitDigest;
use crate::envelope::AuthenticatedManifest;
use crate::error::{Part, SuitError};
use crate::manifest::{ComponentId, MAX_COMPONENTS};
use crate::platform::{Component, Identifier, Platform, Record};
use crate::transfer::{self, Expect, Source};

/// Parameters of one component.
#[derive(Clone, Copy, Default)]
pub(super) struct Params<'a> {
    pub(super) vendor: Option<Identifier<'a>>,
    pub(super) class: Option<&'a [u8]>,
    pub(super) device: Option<&'a [u8]>,
    pub(super) digest: Option<SuitDigest<'a>>,
    pub(super) size: Option<u64>,
    pub(super) slot: Option<u64>,
    pub(super) content: Option<&'a [u8]>,
    pub(super) uri: Option<&'a str>,
    pub(super) source: Option<u64>,
    pub(super) invoke_args: Option<&'a [u8]>,
}

/// Which components the following commands apply to.
#[derive(Clone, Copy)]
enum Selection<'a> {
    One(usize),
    All,
    /// Encoded array of validated indices.
    List(&'a [u8]),
}

/// Iterates the indices of a selection, independently of the machine's borrow.
struct Indices<'a> {
    selection: Selection<'a>,
    count: usize,
    next: usize,
    list: Option<(Reader<'a>, u64)>,
}

impl Iterator for Indices<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self.selection {
            Selection::One(i) => (self.next == 0).then(|| {
                self.next = 1;
                i
            }),
            Selection::All => (self.next < self.count).then(|| {
                self.next += 1;
                self.next - 1
            }),
            Selection::List(_) => {
                let (r, left) = self.list.as_mut()?;
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                r.uint().ok().and_then(|v| usize::try_from(v).ok())
            }
        }
    }
}

pub(super) struct Machine<'x, 'a, P: Platform + ?Sized> {
    platform: &'x mut P,
    manifest: &'x AuthenticatedManifest<'a>,
    ids: [Option<ComponentId<'a>>; MAX_COMPONENTS],
    pub(super) count: usize,
    params: [Params<'a>; MAX_COMPONENTS],
    selection: Selection<'a>,
    soft_failure: bool,
    depth: u8,
    section: Section,
}

impl<'x, 'a, P: Platform + ?Sized> Machine<'x, 'a, P> {
    pub(super) fn new(
        platform: &'x mut P,
        manifest: &'x AuthenticatedManifest<'a>,
    ) -> Result<Self, SuitError> {
        let count = manifest.component_count();
        let mut ids = [None; MAX_COMPONENTS];
        for (index, slot) in ids.iter_mut().enumerate().take(count) {
            let id = manifest
                .component_id(index)
                .ok_or(SuitError::Malformed(Part::Components))?;
            if !platform.has_component(&id) {
                return Err(SuitError::UnsupportedComponent { index });
            }
            *slot = Some(id);
        }
        Ok(Machine {
            platform,
            manifest,
            ids,
            count,
            params: [Params::default(); MAX_COMPONENTS],
            selection: Selection::One(0),
            soft_failure: false,
            depth: 0,
            section: Section::Shared,
        })
    }

    /// Clears the machine, runs the shared sequence, then `seq` (if any) as `section`.
    pub(super) fn run_top(
        &mut self,
        section: Section,
        seq: Option<&'a [u8]>,
    ) -> Result<(), SuitError> {
        self.params = [Params::default(); MAX_COMPONENTS];
        self.selection = Selection::One(0);
        self.soft_failure = false;
        self.depth = 0;
        if let Some(shared) = self.manifest.manifest().shared {
            self.section = Section::Shared;
            self.run_checked(Section::Shared, shared)?;
        }
        if let Some(seq) = seq {
            self.section = section;
            self.run_checked(section, seq)?;
        }
        Ok(())
    }

    /// A top-level sequence of a multi-component manifest must begin with set-component-index.
    fn run_checked(&mut self, section: Section, seq: &'a [u8]) -> Result<(), SuitError> {
        if self.count > 1 {
            let mut r = Reader::new(seq, Part::Sequence);
            r.array()?;
            if r.int()? != Directive::SetComponentIndex.code() {
                return Err(SuitError::MissingComponentIndex(section));
            }
        }
        self.exec(seq)
    }

    fn exec(&mut self, seq: &'a [u8]) -> Result<(), SuitError> {
        let mut r = Reader::new(seq, Part::Sequence);
        let n = r.array()?;
        if n == 0 || n % 2 != 0 {
            return Err(SuitError::Malformed(Part::Sequence));
        }
        for _ in 0..n / 2 {
            let code = r.int()?;
            self.command(code, &mut r)?;
        }
        r.finish()
    }

    fn indices(&self) -> Indices<'a> {
        let list = match self.selection {
            Selection::List(raw) => {
                let mut r = Reader::new(raw, Part::Sequence);
                r.array().ok().map(|n| (r, n))
            }
            _ => None,
        };
        Indices {
            selection: self.selection,
            count: self.count,
            next: 0,
            list,
        }
    }

    fn component(&self, index: usize) -> Result<Component<'a>, SuitError> {
        let id = self
            .ids
            .get(index)
            .copied()
            .flatten()
            .ok_or(SuitError::InvalidComponentIndex(index as u64))?;
        let slot = self.params.get(index).and_then(|p| p.slot);
        Ok(Component { index, id, slot })
    }

    pub(super) fn params(&self, index: usize) -> Result<Params<'a>, SuitError> {
        self.params
            .get(index)
            .copied()
            .ok_or(SuitError::InvalidComponentIndex(index as u64))
    }

    fn record(
        &mut self,
        command: Command,
        component: usize,
        policy: u64,
        result: Result<(), SuitError>,
    ) {
        self.platform.record(&Record {
            section: self.section,
            command,
            component,
            reporting_policy: policy,
            result,
        });
    }

    fn command(&mut self, code: i64, r: &mut Reader<'a>) -> Result<(), SuitError> {
        if let Some(condition) = Condition::from_code(code) {
            let policy = r.uint()?;
            for i in self.indices() {
                let result = self.condition(condition, i);
                self.record(Command::Condition(condition), i, policy, result);
                result?;
            }
            return Ok(());
        }
        let directive = Directive::from_code(code).ok_or(SuitError::UnsupportedCommand(code))?;
        match directive {
            Directive::SetComponentIndex => self.selection = self.read_selection(r)?,
            Directive::OverrideParameters | Directive::SetParameters => {
                let map = r.raw_item()?;
                let overwrite = directive == Directive::OverrideParameters;
                for i in self.indices() {
                    self.apply_parameters(map, i, overwrite)?;
                }
            }
            Directive::TryEach | Directive::RunSequence => {
                let arg = r.raw_item()?;
                let saved = self.selection;
                for i in self.indices() {
                    self.selection = Selection::One(i);
                    let result = if directive == Directive::TryEach {
                        self.try_each(arg)
                    } else {
                        self.run_sequence(arg)
                    };
                    self.selection = saved;
                    result?;
                }
            }
            Directive::Fetch
            | Directive::Copy
            | Directive::Write
            | Directive::Invoke
            | Directive::Swap => {
                let policy = r.uint()?;
                for i in self.indices() {
                    let result = self.action(directive, i);
                    self.record(Command::Directive(directive), i, policy, result);
                    result?;
                }
            }
        }
        Ok(())
    }

    fn read_selection(&self, r: &mut Reader<'a>) -> Result<Selection<'a>, SuitError> {
        let check = |v: u64| {
            if v < self.count as u64 {
                Ok(v as usize)
            } else {
                Err(SuitError::InvalidComponentIndex(v))
            }
        };
        if r.peek_bool() {
            return if r.bool()? {
                Ok(Selection::All)
            } else {
                Err(SuitError::Malformed(Part::Sequence))
            };
        }
        match r.peek_major()? {
            MAJOR_UINT => Ok(Selection::One(check(r.uint()?)?)),
            MAJOR_ARRAY => {
                let raw = r.raw_item()?;
                let mut list = Reader::new(raw, Part::Sequence);
                let n = list.array()?;
                if n == 0 {
                    return Err(SuitError::Malformed(Part::Sequence));
                }
                for _ in 0..n {
                    check(list.uint()?)?;
                }
                Ok(Selection::List(raw))
            }
            _ => Err(SuitError::Malformed(Part::Sequence)),
        }
    }

    fn enter(&mut self) -> Result<(), SuitError> {
        if self.depth >= MAX_NESTING {
            return Err(SuitError::LimitExceeded(Part::Sequence));
        }
        self.depth += 1;
        Ok(())
    }

    /// Runs `seq` with soft-failure preset to `soft`; returns the result and the soft-failure
    /// value in force when it ended (the parameter is scoped to the sequence).
    fn nested(
        &mut self,
        seq: &'a [u8],
        soft: bool,
    ) -> Result<(Result<(), SuitError>, bool), SuitError> {
        self.enter()?;
        let saved = core::mem::replace(&mut self.soft_failure, soft);
        let result = self.exec(seq);
        let soft_at_end = core::mem::replace(&mut self.soft_failure, saved);
        self.depth -= 1;
        Ok((result, soft_at_end))
    }

    fn try_each(&mut self, arg: &'a [u8]) -> Result<(), SuitError> {
        let mut r = Reader::new(arg, Part::Sequence);
        let n = r.array()?;
        if n == 0 {
            return Err(SuitError::Malformed(Part::Sequence));
        }
        let mut last = SuitError::Malformed(Part::Sequence);
        for k in 0..n {
            if r.peek_null() {
                r.null()?;
                return if k + 1 == n {
                    Ok(()) // an empty final sequence: continue even if all failed
                } else {
                    Err(SuitError::Malformed(Part::Sequence))
                };
            }
            let seq = r.bytes()?;
            match self.nested(seq, true)? {
                (Ok(()), _) => return Ok(()),
                (Err(e), true) if e.is_condition_failure() => last = e,
                (Err(e), _) => return Err(e),
            }
        }
        Err(last)
    }

    fn run_sequence(&mut self, arg: &'a [u8]) -> Result<(), SuitError> {
        let seq = Reader::new(arg, Part::Sequence).bytes()?;
        match self.nested(seq, false)? {
            (Err(e), true) if e.is_condition_failure() => Ok(()),
            (result, _) => result,
        }
    }

    fn apply_parameters(
        &mut self,
        map: &'a [u8],
        index: usize,
        overwrite: bool,
    ) -> Result<(), SuitError> {
        let mut r = Reader::new(map, Part::Parameters);
        let n = r.map()?;
        if n == 0 {
            return Err(SuitError::Malformed(Part::Parameters));
        }
        let mut p = self.params(index)?;
        for _ in 0..n {
            let code = r.int()?;
            let Some(param) = Parameter::from_code(code) else {
                if code < -256 {
                    r.skip()?; // custom parameters are hints; standard commands ignore them
                    continue;
                }
                return Err(SuitError::UnsupportedParameter(code));
            };
            fn put<T>(slot: &mut Option<T>, v: T, overwrite: bool) {
                if overwrite || slot.is_none() {
                    *slot = Some(v);
                }
            }
            match param {
                Parameter::VendorId => {
                    let id = if r.peek_major()? == MAJOR_TAG {
                        if r.tag()? != TAG_CBOR_PEN {
                            return Err(SuitError::Malformed(Part::Parameters));
                        }
                        Identifier::VendorPen(r.bytes()?)
                    } else {
                        Identifier::VendorUuid(r.bytes()?)
                    };
                    put(&mut p.vendor, id, overwrite);
                }
                Parameter::ClassId => put(&mut p.class, r.bytes()?, overwrite),
                Parameter::DeviceId => put(&mut p.device, r.bytes()?, overwrite),
                Parameter::ImageDigest => {
                    put(&mut p.digest, SuitDigest::decode(r.bytes()?)?, overwrite)
                }
                Parameter::ImageSize => put(&mut p.size, r.uint()?, overwrite),
                Parameter::ComponentSlot => put(&mut p.slot, r.uint()?, overwrite),
                Parameter::Content => put(&mut p.content, r.bytes()?, overwrite),
                Parameter::Uri => put(&mut p.uri, r.text()?, overwrite),
                Parameter::SourceComponent => put(&mut p.source, r.uint()?, overwrite),
                Parameter::InvokeArgs => put(&mut p.invoke_args, r.bytes()?, overwrite),
                // Execution is always strictly ordered, which every value permits.
                Parameter::StrictOrder => {
                    r.bool()?;
                }
                Parameter::SoftFailure => {
                    let v = r.bool()?;
                    if self.depth == 0 {
                        return Err(SuitError::SoftFailureNotAllowed);
                    }
                    self.soft_failure = v;
                }
            }
        }
        r.finish()?;
        if let Some(slot) = self.params.get_mut(index) {
            *slot = p;
        }
        Ok(())
    }

    fn condition(&mut self, condition: Condition, index: usize) -> Result<(), SuitError> {
        let c = self.component(index)?;
        let p = self.params(index)?;
        let holds = match condition {
            Condition::VendorIdentifier => p
                .vendor
                .is_some_and(|id| self.platform.identifier_matches(&c, id)),
            Condition::ClassIdentifier => p
                .class
                .is_some_and(|id| self.platform.identifier_matches(&c, Identifier::Class(id))),
            Condition::DeviceIdentifier => p
                .device
                .is_some_and(|id| self.platform.identifier_matches(&c, Identifier::Device(id))),
            Condition::ImageMatch => p
                .digest
                .is_some_and(|d| transfer::image_matches(self.platform, &c, d, p.size)),
            Condition::ComponentSlot => {
                p.slot.is_some() && self.platform.component_slot(&c) == p.slot
            }
            Condition::CheckContent => p
                .content
                .is_some_and(|content| transfer::content_matches(self.platform, &c, content)),
            Condition::Abort => false,
        };
        if holds {
            Ok(())
        } else {
            Err(SuitError::ConditionFailed {
                condition,
                component: index,
            })
        }
    }

    fn source_component(
        &self,
        directive: Directive,
        index: usize,
        p: &Params<'a>,
    ) -> Result<Component<'a>, SuitError> {
        let src = p.source.ok_or(SuitError::MissingParameter {
            directive,
            parameter: Parameter::SourceComponent,
            component: index,
        })?;
        if src >= self.count as u64 || src == index as u64 {
            return Err(SuitError::InvalidComponentIndex(src));
        }
        self.component(src as usize)
    }

    fn action(&mut self, directive: Directive, index: usize) -> Result<(), SuitError> {
        let c = self.component(index)?;
        let p = self.params(index)?;
        let missing = |parameter| SuitError::MissingParameter {
            directive,
            parameter,
            component: index,
        };
        let expect = Expect {
            digest: p.digest,
            size: p.size,
        };
        match directive {
            Directive::Fetch => {
                let uri = p.uri.ok_or(missing(Parameter::Uri))?;
                let source = match self.manifest.envelope().integrated_payload(uri)? {
                    Some(bytes) => Source::Bytes(bytes),
                    None => Source::Uri(uri),
                };
                transfer::transfer(self.platform, directive, &c, source, expect)
            }
            Directive::Write => {
                let content = p.content.ok_or(missing(Parameter::Content))?;
                transfer::transfer(self.platform, directive, &c, Source::Bytes(content), expect)
            }
            Directive::Copy => {
                let src = self.source_component(directive, index, &p)?;
                transfer::transfer(self.platform, directive, &c, Source::Component(src), expect)
            }
            Directive::Swap => {
                let src = self.source_component(directive, index, &p)?;
                self.platform
                    .swap(&c, &src)
                    .map_err(|error| SuitError::Platform {
                        directive,
                        component: index,
                        error,
                    })
            }
            Directive::Invoke => {
                self.platform
                    .invoke(&c, p.invoke_args)
                    .map_err(|error| SuitError::Platform {
                        directive,
                        component: index,
                        error,
                    })
            }
            _ => Err(SuitError::UnsupportedCommand(directive.code())),
        }
    }
}
