package vcard

import (
	"testing"

	"switchboard/xmpp/wire"
	"switchboard/xmpp/xmpptest"
)

func TestEditApply(t *testing.T) {
	str := func(s string) *string { return &s }
	const photo = "<PHOTO><TYPE>image/png</TYPE><BINVAL>AAAA</BINVAL></PHOTO>"
	tests := []struct {
		name  string
		vcard string // "" : none
		edit  Edit
		want  string
	}{
		{"nothing to change", "<vCard xmlns='vcard-temp'><FN>A</FN>" + photo + "</vCard>", Edit{},
			"<vCard xmlns='vcard-temp'><FN>A</FN>" + photo + "</vCard>"},
		{"from nothing", "", Edit{FullName: str("Alice"), Given: str("Alice"), Extension: str("12"), Email: str("a@x")},
			"<vCard xmlns='vcard-temp'><FN>Alice</FN><N><GIVEN>Alice</GIVEN></N><TEL><WORK/><VOICE/><NUMBER>12</NUMBER></TEL><EMAIL><INTERNET/><WORK/><USERID>a@x</USERID></EMAIL></vCard>"},
		{"replaced in place, the rest kept", "<vCard xmlns='vcard-temp'><FN>Al</FN>" + photo + "<N><FAMILY>L</FAMILY><GIVEN>Al</GIVEN></N></vCard>",
			Edit{FullName: str("Alice L"), Given: str("Alice")},
			"<vCard xmlns='vcard-temp'><FN>Alice L</FN>" + photo + "<N><FAMILY>L</FAMILY><GIVEN>Alice</GIVEN></N></vCard>"},
		{"the work number preferred", "<vCard xmlns='vcard-temp'><TEL><CELL/><NUMBER>07700</NUMBER></TEL><TEL><WORK/><NUMBER>1</NUMBER></TEL></vCard>",
			Edit{Extension: str("2")},
			"<vCard xmlns='vcard-temp'><TEL><CELL/><NUMBER>07700</NUMBER></TEL><TEL><WORK/><NUMBER>2</NUMBER></TEL></vCard>"},
		// The user's own numbers are not the extension: a new work
		// line beside them, and removing the extension leaves them.
		{"a mobile number stays", "<vCard xmlns='vcard-temp'><TEL><CELL/><NUMBER>07700</NUMBER></TEL></vCard>",
			Edit{Extension: str("2")},
			"<vCard xmlns='vcard-temp'><TEL><CELL/><NUMBER>07700</NUMBER></TEL><TEL><WORK/><VOICE/><NUMBER>2</NUMBER></TEL></vCard>"},
		{"removing leaves a mobile number", "<vCard xmlns='vcard-temp'><TEL><CELL/><NUMBER>07700</NUMBER></TEL></vCard>",
			Edit{Extension: str("")},
			"<vCard xmlns='vcard-temp'><TEL><CELL/><NUMBER>07700</NUMBER></TEL></vCard>"},
		{"a work fax is not the extension", "<vCard xmlns='vcard-temp'><TEL><WORK/><FAX/><NUMBER>9</NUMBER></TEL><TEL><WORK/><VOICE/><NUMBER>1</NUMBER></TEL></vCard>",
			Edit{Extension: str("2")},
			"<vCard xmlns='vcard-temp'><TEL><WORK/><FAX/><NUMBER>9</NUMBER></TEL><TEL><WORK/><VOICE/><NUMBER>2</NUMBER></TEL></vCard>"},
		{"a work line without a number gets one", "<vCard xmlns='vcard-temp'><TEL><WORK/><VOICE/></TEL></vCard>",
			Edit{Extension: str("2")},
			"<vCard xmlns='vcard-temp'><TEL><WORK/><VOICE/><NUMBER>2</NUMBER></TEL></vCard>"},
		{"a home address stays", "<vCard xmlns='vcard-temp'><EMAIL><HOME/><USERID>me@home</USERID></EMAIL><EMAIL>text@form</EMAIL></vCard>",
			Edit{Email: str("a@work")},
			"<vCard xmlns='vcard-temp'><EMAIL><HOME/><USERID>me@home</USERID></EMAIL><EMAIL>text@form</EMAIL><EMAIL><INTERNET/><WORK/><USERID>a@work</USERID></EMAIL></vCard>"},
		{"extra copies go with the first", "<vCard xmlns='vcard-temp'><FN>A</FN><NICKNAME>n</NICKNAME><FN>B</FN></vCard>",
			Edit{FullName: str("C")},
			"<vCard xmlns='vcard-temp'><FN>C</FN><NICKNAME>n</NICKNAME></vCard>"},
		{"the family name first, as the DTD orders", "<vCard xmlns='vcard-temp'><N><GIVEN>A</GIVEN><MIDDLE>M</MIDDLE></N><N><GIVEN>other</GIVEN></N></vCard>",
			Edit{Family: str("L")},
			"<vCard xmlns='vcard-temp'><N><FAMILY>L</FAMILY><GIVEN>A</GIVEN><MIDDLE>M</MIDDLE></N><N><GIVEN>other</GIVEN></N></vCard>"},
		{"a new department with an organisation name", "<vCard xmlns='vcard-temp'/>",
			Edit{Department: str("Sales")},
			"<vCard xmlns='vcard-temp'><ORG><ORGNAME/><ORGUNIT>Sales</ORGUNIT></ORG></vCard>"},
		{"attributes kept", "<vCard xmlns='vcard-temp' xml:lang='de'><TEL xml:lang='de'><WORK/><NUMBER>1</NUMBER></TEL></vCard>",
			Edit{Extension: str("2")},
			"<vCard xmlns='vcard-temp' xml:lang='de'><TEL xml:lang='de'><WORK/><NUMBER>2</NUMBER></TEL></vCard>"},
		{"a prefixed vCard", "<v:vCard xmlns:v='vcard-temp'><v:FN>A</v:FN><v:NICKNAME>n</v:NICKNAME></v:vCard>",
			Edit{FullName: str("B")},
			"<vCard xmlns='vcard-temp'><FN>B</FN><v:NICKNAME xmlns='' xmlns:v='vcard-temp'>n</v:NICKNAME></vCard>"},
		{"removed, and the empty property with it", "<vCard xmlns='vcard-temp'><FN>A</FN><TEL><WORK/><NUMBER>1</NUMBER></TEL><ORG><ORGUNIT>S</ORGUNIT></ORG></vCard>",
			Edit{FullName: str(""), Extension: str(""), Department: str("")},
			"<vCard xmlns='vcard-temp'/>"},
		{"department beside the organisation", "<vCard xmlns='vcard-temp'><ORG><ORGNAME>Ex</ORGNAME></ORG></vCard>",
			Edit{Department: str("Sales")},
			"<vCard xmlns='vcard-temp'><ORG><ORGNAME>Ex</ORGNAME><ORGUNIT>Sales</ORGUNIT></ORG></vCard>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in = parseOrNil(t, tc.vcard)
			got := tc.edit.Apply(in).AppendXML(nil, "")
			if string(got) != tc.want {
				// Both sides are this package's writer's output, so
				// the comparison is of canonical forms.
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func parseOrNil(t *testing.T, s string) *wire.Element {
	if s == "" {
		return nil
	}
	return xmpptest.Element(t, s)
}
