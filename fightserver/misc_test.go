package fightserver

import (
	"errors"
	"strings"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

type errorString string

func (e errorString) Error() string { return string(e) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
