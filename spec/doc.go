// Package spec holds the bottle spec format (apiVersion
// bottle-reconcile/v1alpha1, kind Bottle) and its strict loader: JSON Schema
// validation, semantic checks, and problems that point at file:line:col.
package spec
