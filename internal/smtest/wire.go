package smtest

import (
	"strconv"
	"time"
)

// The request and response shapes of the Secrets Manager JSON 1.1 protocol.
// Go field names match the wire names, so encoding/json needs no tags except
// for omitempty.

// epoch is a timestamp written as epoch seconds with a fraction, the JSON
// 1.1 protocol's default timestamp format.
type epoch time.Time

func (e epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(e).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)), nil
}

// stamp returns t as a wire timestamp, or nil when t is zero so that the
// field is left out.
func stamp(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

type tagWire struct {
	Key   string
	Value string
}

type rulesWire struct {
	AutomaticallyAfterDays *int64 `json:",omitempty"`
	Duration               string `json:",omitempty"`
	ScheduleExpression     string `json:",omitempty"`
}

type filterWire struct {
	Key    string
	Values []string
}

type idIn struct {
	SecretId string
}

type createIn struct {
	Name               string
	ClientRequestToken string
	Description        string
	SecretString       *string
	SecretBinary       []byte
	Tags               []tagWire
}

type nameOut struct {
	ARN       string
	Name      string
	VersionId string `json:",omitempty"`
}

type getIn struct {
	SecretId     string
	VersionId    string
	VersionStage string
}

type valueOut struct {
	ARN           string
	Name          string
	VersionId     string
	SecretString  *string `json:",omitempty"`
	SecretBinary  []byte  `json:",omitempty"`
	VersionStages []string
	CreatedDate   *epoch `json:",omitempty"`
}

type putIn struct {
	SecretId           string
	ClientRequestToken string
	RotationToken      string
	SecretString       *string
	SecretBinary       []byte
	VersionStages      []string
}

type putOut struct {
	ARN           string
	Name          string
	VersionId     string
	VersionStages []string
}

type stageIn struct {
	SecretId            string
	VersionStage        string
	MoveToVersionId     string
	RemoveFromVersionId string
}

// secretEntry is both DescribeSecret's response and one SecretListEntry of
// ListSecrets; the two name the label map differently.
type secretEntry struct {
	ARN                    string
	Name                   string
	Description            string              `json:",omitempty"`
	CreatedDate            *epoch              `json:",omitempty"`
	LastChangedDate        *epoch              `json:",omitempty"`
	LastAccessedDate       *epoch              `json:",omitempty"`
	LastRotatedDate        *epoch              `json:",omitempty"`
	NextRotationDate       *epoch              `json:",omitempty"`
	DeletedDate            *epoch              `json:",omitempty"`
	RotationEnabled        bool                `json:",omitempty"`
	RotationLambdaARN      string              `json:",omitempty"`
	RotationRules          *rulesWire          `json:",omitempty"`
	Tags                   []tagWire           `json:",omitempty"`
	VersionIdsToStages     map[string][]string `json:",omitempty"`
	SecretVersionsToStages map[string][]string `json:",omitempty"`
}

type listIn struct {
	Filters                []filterWire
	IncludePlannedDeletion bool
	MaxResults             *int32
	NextToken              string
	SortBy                 string
	SortOrder              string
}

type listOut struct {
	SecretList []secretEntry
	NextToken  string `json:",omitempty"`
}

type versionsIn struct {
	SecretId          string
	IncludeDeprecated bool
	MaxResults        *int32
	NextToken         string
}

type versionEntry struct {
	VersionId        string
	VersionStages    []string `json:",omitempty"`
	CreatedDate      *epoch   `json:",omitempty"`
	LastAccessedDate *epoch   `json:",omitempty"`
}

type versionsOut struct {
	ARN       string
	Name      string
	Versions  []versionEntry
	NextToken string `json:",omitempty"`
}

type batchIn struct {
	SecretIdList []string
	Filters      []filterWire
	MaxResults   *int32
	NextToken    string
}

type batchError struct {
	SecretId  string
	ErrorCode string
	Message   string
}

type batchOut struct {
	SecretValues []valueOut
	Errors       []batchError
	NextToken    string `json:",omitempty"`
}

type rotateIn struct {
	SecretId           string
	ClientRequestToken string
	RotationLambdaARN  string
	RotationRules      *rulesWire
	RotateImmediately  *bool
}

type deleteIn struct {
	SecretId                   string
	ForceDeleteWithoutRecovery bool
	RecoveryWindowInDays       *int64
}

type deleteOut struct {
	ARN          string
	Name         string
	DeletionDate *epoch
}

type tagIn struct {
	SecretId string
	Tags     []tagWire
}

type untagIn struct {
	SecretId string
	TagKeys  []string
}
