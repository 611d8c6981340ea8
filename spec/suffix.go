package spec

import (
	"fmt"

	"golang.org/x/net/publicsuffix"
)

// wildcardScope says what is wrong with the suffix of a wildcard rule:
// refused when it is a public suffix run by a registry (com, co.uk), where
// anyone can register a name and receive what a guest sends; warned when
// it is one in the list's private section (github.io), where a company
// hands out names to anyone, which may still be meant.
func wildcardScope(suffix string) (refused, warning string) {
	ps, icann := publicsuffix.PublicSuffix(suffix)
	if ps != suffix {
		return "", ""
	}
	if icann {
		return fmt.Sprintf("covers every name registered under %s, a public suffix: anyone can register one and receive what the guest sends; name a registered domain, e.g. *.example.%s", suffix, suffix), ""
	}
	return "", fmt.Sprintf("covers names that anyone can get under %s (a public suffix in the private section of the Public Suffix List): any of them can receive what the guest sends; name the hosts you need, e.g. acme.%s", suffix, suffix)
}
