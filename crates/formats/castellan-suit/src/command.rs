//! The numbers of draft-ietf-suit-manifest-34 (IANA "SUIT" registries): envelope and manifest
//! keys, commands (conditions and directives) and parameters, with their names.
//!
//! The numbers were checked against the IANA registry created from the draft and against the six
//! Appendix B examples (install is 20, payload-fetch 16, text 23).

/// Envelope key of the authentication wrapper.
pub const ENVELOPE_AUTH: i64 = 2;
/// Envelope and manifest key of the manifest.
pub const ENVELOPE_MANIFEST: i64 = 3;
/// CBOR tag of `SUIT_Envelope_Tagged`.
pub const TAG_ENVELOPE: u64 = 107;
/// CBOR tag of `COSE_Sign1_Tagged`.
pub const TAG_COSE_SIGN1: u64 = 18;

/// Manifest keys.
pub(crate) mod key {
    pub const VERSION: i64 = 1;
    pub const SEQUENCE_NUMBER: i64 = 2;
    pub const COMMON: i64 = 3;
    pub const REFERENCE_URI: i64 = 4;
    pub const VALIDATE: i64 = 7;
    pub const LOAD: i64 = 8;
    pub const INVOKE: i64 = 9;
    pub const PAYLOAD_FETCH: i64 = 16;
    pub const INSTALL: i64 = 20;
    pub const TEXT: i64 = 23;
    // SUIT_Common
    pub const DEPENDENCIES: i64 = 1;
    pub const COMPONENTS: i64 = 2;
    pub const SHARED_SEQUENCE: i64 = 4;
}

/// Castellan's custom parameter "castellan-expires" (custom parameters are the negative codes
/// below -256): the unix time (seconds) at which a release stops being installable, set in the
/// shared sequence. Read it with
/// [`AuthenticatedManifest::expires`](crate::AuthenticatedManifest::expires).
pub const CUSTOM_PARAMETER_EXPIRES: i64 = -257;

/// A command sequence (or the text) of the manifest.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// `suit-shared-sequence` (in `suit-common`), run before every other sequence.
    Shared,
    /// `suit-payload-fetch` (16, severable).
    PayloadFetch,
    /// `suit-install` (20, severable).
    Install,
    /// `suit-validate` (7).
    Validate,
    /// `suit-load` (8).
    Load,
    /// `suit-invoke` (9).
    Invoke,
    /// `suit-text` (23, severable).
    Text,
    /// `suit-common` (3).
    Common,
}

impl Section {
    /// The manifest key of this section (`None` for the shared sequence, which lives in common).
    pub fn key(self) -> Option<i64> {
        match self {
            Section::Shared => None,
            Section::PayloadFetch => Some(key::PAYLOAD_FETCH),
            Section::Install => Some(key::INSTALL),
            Section::Validate => Some(key::VALIDATE),
            Section::Load => Some(key::LOAD),
            Section::Invoke => Some(key::INVOKE),
            Section::Text => Some(key::TEXT),
            Section::Common => Some(key::COMMON),
        }
    }

    /// The draft's name of the section.
    pub fn name(self) -> &'static str {
        match self {
            Section::Shared => "shared-sequence",
            Section::PayloadFetch => "payload-fetch",
            Section::Install => "install",
            Section::Validate => "validate",
            Section::Load => "load",
            Section::Invoke => "invoke",
            Section::Text => "text",
            Section::Common => "common",
        }
    }
}

/// A SUIT condition (a command without side effects).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// 1: the component's vendor identifier matches the vendor-id parameter.
    VendorIdentifier,
    /// 2: the component's class identifier matches the class-id parameter.
    ClassIdentifier,
    /// 3: the digest of the component matches the image-digest parameter.
    ImageMatch,
    /// 5: the component's slot matches the component-slot parameter.
    ComponentSlot,
    /// 6: the component's content equals the content parameter (constant time).
    CheckContent,
    /// 14: always fails.
    Abort,
    /// 24: the device identifier matches the device-id parameter.
    DeviceIdentifier,
}

impl Condition {
    /// Decodes a command code into a condition.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => Condition::VendorIdentifier,
            2 => Condition::ClassIdentifier,
            3 => Condition::ImageMatch,
            5 => Condition::ComponentSlot,
            6 => Condition::CheckContent,
            14 => Condition::Abort,
            24 => Condition::DeviceIdentifier,
            _ => return None,
        })
    }

    /// The command code.
    pub fn code(self) -> i64 {
        match self {
            Condition::VendorIdentifier => 1,
            Condition::ClassIdentifier => 2,
            Condition::ImageMatch => 3,
            Condition::ComponentSlot => 5,
            Condition::CheckContent => 6,
            Condition::Abort => 14,
            Condition::DeviceIdentifier => 24,
        }
    }

    /// The draft's name.
    pub fn name(self) -> &'static str {
        match self {
            Condition::VendorIdentifier => "condition-vendor-identifier",
            Condition::ClassIdentifier => "condition-class-identifier",
            Condition::ImageMatch => "condition-image-match",
            Condition::ComponentSlot => "condition-component-slot",
            Condition::CheckContent => "condition-check-content",
            Condition::Abort => "condition-abort",
            Condition::DeviceIdentifier => "condition-device-identifier",
        }
    }
}

/// A SUIT directive (a command with side effects or control flow).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    /// 12: select the component(s) the following commands apply to.
    SetComponentIndex,
    /// 15: run sequences until one completes without a condition failure.
    TryEach,
    /// 18: write the content parameter into the component.
    Write,
    /// 19: set parameters that are not yet set (draft-ietf-suit-trust-domains).
    SetParameters,
    /// 20: set parameters, replacing existing values.
    OverrideParameters,
    /// 21: fetch the URI parameter into the component.
    Fetch,
    /// 22: copy the source component into the component.
    Copy,
    /// 23: transfer execution to the component.
    Invoke,
    /// 31: exchange the component with the source component.
    Swap,
    /// 32: run a nested command sequence.
    RunSequence,
}

impl Directive {
    /// Decodes a command code into a directive.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            12 => Directive::SetComponentIndex,
            15 => Directive::TryEach,
            18 => Directive::Write,
            19 => Directive::SetParameters,
            20 => Directive::OverrideParameters,
            21 => Directive::Fetch,
            22 => Directive::Copy,
            23 => Directive::Invoke,
            31 => Directive::Swap,
            32 => Directive::RunSequence,
            _ => return None,
        })
    }

    /// The command code.
    pub fn code(self) -> i64 {
        match self {
            Directive::SetComponentIndex => 12,
            Directive::TryEach => 15,
            Directive::Write => 18,
            Directive::SetParameters => 19,
            Directive::OverrideParameters => 20,
            Directive::Fetch => 21,
            Directive::Copy => 22,
            Directive::Invoke => 23,
            Directive::Swap => 31,
            Directive::RunSequence => 32,
        }
    }

    /// The draft's name.
    pub fn name(self) -> &'static str {
        match self {
            Directive::SetComponentIndex => "directive-set-component-index",
            Directive::TryEach => "directive-try-each",
            Directive::Write => "directive-write",
            Directive::SetParameters => "directive-set-parameters",
            Directive::OverrideParameters => "directive-override-parameters",
            Directive::Fetch => "directive-fetch",
            Directive::Copy => "directive-copy",
            Directive::Invoke => "directive-invoke",
            Directive::Swap => "directive-swap",
            Directive::RunSequence => "directive-run-sequence",
        }
    }
}

/// A condition or a directive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// A condition.
    Condition(Condition),
    /// A directive.
    Directive(Directive),
}

impl Command {
    /// Decodes a command code.
    pub fn from_code(code: i64) -> Option<Self> {
        Condition::from_code(code)
            .map(Command::Condition)
            .or_else(|| Directive::from_code(code).map(Command::Directive))
    }

    /// The draft's name.
    pub fn name(self) -> &'static str {
        match self {
            Command::Condition(c) => c.name(),
            Command::Directive(d) => d.name(),
        }
    }
}

/// A SUIT parameter.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parameter {
    /// 1: vendor identifier (UUID bstr or CBOR PEN, tag 112).
    VendorId,
    /// 2: class identifier (UUID bstr).
    ClassId,
    /// 3: image digest (bstr-wrapped `SUIT_Digest`).
    ImageDigest,
    /// 5: component slot.
    ComponentSlot,
    /// 12: strict order.
    StrictOrder,
    /// 13: soft failure.
    SoftFailure,
    /// 14: image size.
    ImageSize,
    /// 18: content for write / check-content.
    Content,
    /// 21: URI to fetch from.
    Uri,
    /// 22: source component index for copy / swap.
    SourceComponent,
    /// 23: invoke arguments.
    InvokeArgs,
    /// 24: device identifier.
    DeviceId,
}

impl Parameter {
    /// Decodes a parameter key.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => Parameter::VendorId,
            2 => Parameter::ClassId,
            3 => Parameter::ImageDigest,
            5 => Parameter::ComponentSlot,
            12 => Parameter::StrictOrder,
            13 => Parameter::SoftFailure,
            14 => Parameter::ImageSize,
            18 => Parameter::Content,
            21 => Parameter::Uri,
            22 => Parameter::SourceComponent,
            23 => Parameter::InvokeArgs,
            24 => Parameter::DeviceId,
            _ => return None,
        })
    }

    /// The parameter key.
    pub fn code(self) -> i64 {
        match self {
            Parameter::VendorId => 1,
            Parameter::ClassId => 2,
            Parameter::ImageDigest => 3,
            Parameter::ComponentSlot => 5,
            Parameter::StrictOrder => 12,
            Parameter::SoftFailure => 13,
            Parameter::ImageSize => 14,
            Parameter::Content => 18,
            Parameter::Uri => 21,
            Parameter::SourceComponent => 22,
            Parameter::InvokeArgs => 23,
            Parameter::DeviceId => 24,
        }
    }

    /// The draft's name.
    pub fn name(self) -> &'static str {
        match self {
            Parameter::VendorId => "vendor-id",
            Parameter::ClassId => "class-id",
            Parameter::ImageDigest => "image-digest",
            Parameter::ComponentSlot => "component-slot",
            Parameter::StrictOrder => "strict-order",
            Parameter::SoftFailure => "soft-failure",
            Parameter::ImageSize => "image-size",
            Parameter::Content => "content",
            Parameter::Uri => "uri",
            Parameter::SourceComponent => "source-component",
            Parameter::InvokeArgs => "invoke-args",
            Parameter::DeviceId => "device-id",
        }
    }
}
