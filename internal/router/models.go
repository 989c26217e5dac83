package router

import (
	"encoding/json"
	"net/http"

	"github.com/keyturn/keyturn/internal/upstream"
)

// modelList is OpenAI's response to GET /v1/models.
type modelList struct {
	Object string        `json:"object"`
	Data   []modelObject `json:"data"`
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// modelsBody encodes the configured public models, sorted by name. Created
// is the router's start, since the public names exist from then on, and
// OwnedBy is the config's provider name.
func modelsBody(cfg Config, created int64) []byte {
	list := modelList{Object: "list", Data: []modelObject{}}
	for _, name := range sortedKeys(cfg.Models) {
		list.Data = append(list.Data, modelObject{ID: name, Object: "model", Created: created, OwnedBy: cfg.Models[name].Provider})
	}
	data, err := json.Marshal(list)
	if err != nil {
		panic("router: encoding the model list: " + err.Error())
	}
	return append(data, '\n')
}

func (s *Server) serveModels(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, http.MethodGet) {
		return
	}
	if _, ok := s.checkClient(w, r); !ok {
		return
	}
	upstream.WriteJSON(w, http.StatusOK, s.models)
}
